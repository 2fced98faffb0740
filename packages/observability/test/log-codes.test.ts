// docs/LOG-CODES.md is the index of the codes the services log (STYLE.md: every error logged with a stable code
// listed in one document): every code a log call of a package or service names must be found there. Read from the
// code itself (the first argument of a logger's info/warn/error/... call, its `code` property a string), so a new
// log line without its row fails here rather than in an operator's search.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const LOG_LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);

function sourceFiles(): string[] {
  const files: string[] = [];
  for (const top of ['packages', 'services']) {
    for (const name of readdirSync(join(ROOT, top))) {
      const src = join(ROOT, top, name, 'src');
      let entries: string[];
      try {
        entries = readdirSync(src, { recursive: true }) as string[];
      } catch {
        continue;
      }
      for (const entry of entries) if (entry.endsWith('.ts')) files.push(join(src, entry));
    }
  }
  return files;
}

/** The codes named by log calls: `<anything>.warn({ code: 'X', ... }, ...)` and the other levels. */
export function loggedCodes(file: string, text: string): { code: string; where: string }[] {
  const found: { code: string; where: string }[] = [];
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const visit = (node: ts.Node) => {
    if (
      ts.isCallExpression(node) &&
      ts.isPropertyAccessExpression(node.expression) &&
      LOG_LEVELS.has(node.expression.name.text)
    ) {
      const [first] = node.arguments;
      if (first && ts.isObjectLiteralExpression(first)) {
        for (const property of first.properties) {
          if (
            ts.isPropertyAssignment(property) &&
            ts.isIdentifier(property.name) &&
            property.name.text === 'code' &&
            ts.isStringLiteral(property.initializer)
          ) {
            const line = sf.getLineAndCharacterOfPosition(node.getStart()).line + 1;
            found.push({ code: property.initializer.text, where: `${file.slice(ROOT.length)}:${line}` });
          }
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

describe('LOG-CODES.md', () => {
  it('finds the codes of log calls (the reader this test relies on)', () => {
    const text =
      "log.warn({ code: 'A_B', err }, 'x');\nreq.log.info({ messageId, code: 'C_D' }, 'y');\nf({ code: 'E' });";
    assert.deepEqual(
      loggedCodes(join(ROOT, 'x.ts'), text).map((c) => c.code),
      ['A_B', 'C_D'],
    );
  });

  it('has a row or a mention of every code a package or service logs', () => {
    const doc = readFileSync(join(ROOT, 'docs/LOG-CODES.md'), 'utf8');
    const documented = new Set([...doc.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]));
    const missing = sourceFiles()
      .flatMap((file) => loggedCodes(file, readFileSync(file, 'utf8')))
      .filter(({ code }) => !documented.has(code))
      .map(({ code, where }) => `${code} (${where})`);
    assert.deepEqual(missing, []);
  });
});
