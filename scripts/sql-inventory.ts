// Lists every SQL statement a service can run: from services/<name>/src/main.ts through every declaration it
// reaches (functions, constants, into the packages it uses; by the TypeScript checker, not by imports of whole
// files), each string or template that reads as SQL with its file and line. The inventory in
// packages/db/src/service-roles.ts was made from this list, statement by statement.
//   node scripts/sql-inventory.ts ingest
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const cfgPath = join(ROOT, 'tsconfig.json');
const cfg = ts.parseJsonConfigFileContent(ts.readConfigFile(cfgPath, ts.sys.readFile).config, ts.sys, ROOT);
const files = cfg.fileNames.filter((f) => f.includes('/src/') && !f.includes('/test/'));
const program = ts.createProgram(files, cfg.options);
const checker = program.getTypeChecker();

const SQL = /\b(select\b[\s\S]*\bfrom|insert into|update \w+ (\w+ )?set|delete from)\b/i;

function topLevelOf(node: ts.Node): ts.Node | undefined {
  let n: ts.Node = node;
  while (n.parent && !ts.isSourceFile(n.parent)) n = n.parent;
  if (!n.parent) return undefined;
  return n;
}
function inRepo(sf: ts.SourceFile) {
  return sf.fileName.startsWith(ROOT) && !sf.fileName.includes('node_modules') && !sf.isDeclarationFile;
}
function sqlText(node: ts.Node): string | undefined {
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text;
  if (ts.isTemplateExpression(node)) {
    let s = node.head.text;
    for (const span of node.templateSpans) s += `\${${span.expression.getText()}}${span.literal.text}`;
    return s;
  }
  return undefined;
}

export function reach(service: string) {
  const main = program.getSourceFile(join(ROOT, `services/${service}/src/main.ts`));
  if (!main) throw new Error(`no services/${service}/src/main.ts`);
  const seen = new Set<ts.Node>();
  const queue: ts.Node[] = [];
  for (const st of main.statements) {
    seen.add(st);
    queue.push(st);
  }
  const sqls: { file: string; line: number; sql: string; decl: string }[] = [];
  while (queue.length) {
    const decl = queue.pop();
    if (!decl) break;
    const sf = decl.getSourceFile();
    const visit = (n: ts.Node) => {
      const text = sqlText(n);
      if (text !== undefined && SQL.test(text)) {
        sqls.push({
          file: relative(ROOT, sf.fileName),
          line: sf.getLineAndCharacterOfPosition(n.getStart()).line + 1,
          sql: text,
          decl: declName(decl),
        });
      }
      if (ts.isIdentifier(n)) {
        let sym = checker.getSymbolAtLocation(n);
        if (sym && sym.flags & ts.SymbolFlags.Alias) {
          try {
            sym = checker.getAliasedSymbol(sym);
          } catch {}
        }
        for (const d of sym?.declarations ?? []) {
          const dsf = d.getSourceFile();
          if (!inRepo(dsf)) continue;
          const top = topLevelOf(d);
          if (top && !seen.has(top)) {
            seen.add(top);
            queue.push(top);
          }
        }
      }
      ts.forEachChild(n, visit);
    };
    visit(decl);
  }
  return sqls;
}
function declName(d: ts.Node): string {
  const sf = d.getSourceFile();
  const t = (d.getText().split('\n')[0] ?? '').slice(0, 80);
  return `${relative(ROOT, sf.fileName)}: ${t}`;
}

if (import.meta.main) {
  const out = reach(process.argv[2] ?? 'ingest');
  console.log(JSON.stringify(out, null, 1));
}
