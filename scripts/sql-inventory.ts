// Lists every SQL statement a service can run: from services/<name>/src/main.ts through every declaration it
// reaches (functions, constants, into the packages it uses; by the TypeScript checker, not by imports of whole
// files), each string or template that reads as SQL with its file and line. The inventory in
// packages/db/src/service-roles.ts was made from this list, statement by statement.
//   node scripts/sql-inventory.ts ingest      the statements of one service, as found and as resolved
// packages/db/test/service-statements.test.ts runs the walk (statementsFile) and prepares every statement as each
// service's role.
// A template's `${...}` is resolved where it is a constant string or number, a call of a function returning one
// template (arguments bound), or a function's parameter (every call the service reaches, each a variant). A
// statement it cannot resolve (a parameter number counted at run time, fragments joined from an array) is listed as
// `unresolved` with its text: the test needs a hand-written form of each (RUN_TIME_STATEMENTS there).
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SERVICES = ['ingest', 'scan', 'encrypt', 'signature-verify', 'deliver', 'mailbox', 'admin', 'lifecycle-reaper'];

const SQL = /\b(select\b[\s\S]*\bfrom|insert into|update \w+ (\w+ )?set|delete from)\b/i;
/** A text that is a whole statement; any other SQL-looking text is a fragment, checked where it is put in one. */
const STATEMENT = /^\s*(select|insert|update|delete|with|do)\b/i;
/** More variants of one template than this and it is listed unresolved (none comes close). */
const MAX_VARIANTS = 64;

let program: ts.Program | undefined;
function checkerOf(): ts.TypeChecker {
  if (!program) {
    const cfgPath = join(ROOT, 'tsconfig.json');
    const cfg = ts.parseJsonConfigFileContent(ts.readConfigFile(cfgPath, ts.sys.readFile).config, ts.sys, ROOT);
    const files = cfg.fileNames.filter((f) => f.includes('/src/') && !f.includes('/test/'));
    program = ts.createProgram(files, cfg.options);
  }
  return program.getTypeChecker();
}

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

export interface FoundSql {
  file: string;
  line: number;
  sql: string;
  decl: string;
}

export interface ServiceStatement {
  file: string;
  line: number;
  /** Each form the statement can take (one, or one per constant branch or caller). */
  statements: string[];
}
export interface UnresolvedStatement {
  file: string;
  line: number;
  /** As written, with each `${...}` of one constant value put in. */
  text: string;
}
export interface ServiceInventory {
  statements: ServiceStatement[];
  unresolved: UnresolvedStatement[];
}

type FunctionLike = ts.FunctionDeclaration | ts.ArrowFunction | ts.FunctionExpression | ts.MethodDeclaration;

function symbolOf(node: ts.Node): ts.Symbol | undefined {
  const checker = checkerOf();
  let sym = checker.getSymbolAtLocation(node);
  if (sym && sym.flags & ts.SymbolFlags.Alias) {
    try {
      sym = checker.getAliasedSymbol(sym);
    } catch {}
  }
  return sym;
}

/** The function a call calls, when it is one of the repository's. */
function calleeOf(call: ts.CallExpression): FunctionLike | undefined {
  const decl = symbolOf(call.expression)?.declarations?.[0];
  if (!decl || !inRepo(decl.getSourceFile())) return undefined;
  if (ts.isFunctionDeclaration(decl) || ts.isMethodDeclaration(decl)) return decl;
  if (ts.isVariableDeclaration(decl) && decl.initializer) {
    const init = decl.initializer;
    if (ts.isArrowFunction(init) || ts.isFunctionExpression(init)) return init;
  }
  return undefined;
}

/** The one expression a function returns, if its body is nothing else. */
function returnedExpression(fn: FunctionLike): ts.Expression | undefined {
  const body = fn.body;
  if (!body) return undefined;
  if (!ts.isBlock(body)) return body;
  const [only] = body.statements;
  if (body.statements.length === 1 && only && ts.isReturnStatement(only)) return only.expression;
  return undefined;
}

const ARITHMETIC: Partial<Record<ts.SyntaxKind, '+' | '-' | '*' | '/'>> = {
  [ts.SyntaxKind.PlusToken]: '+',
  [ts.SyntaxKind.MinusToken]: '-',
  [ts.SyntaxKind.AsteriskToken]: '*',
  [ts.SyntaxKind.SlashToken]: '/',
};
function arithmetic(operator: '+' | '-' | '*' | '/', a: number, b: number): number {
  if (operator === '+') return a + b;
  if (operator === '-') return a - b;
  if (operator === '*') return a * b;
  return a / b;
}

class Resolver {
  readonly calls = new Map<FunctionLike, ts.CallExpression[]>();
  readonly #active = new Set<ts.Node>();

  /** Every text `node` can evaluate to, or undefined when one of them depends on something known at run time. */
  resolve(node: ts.Expression, bound: Map<ts.Symbol, string[]>): string[] | undefined {
    if (this.#active.has(node)) return undefined;
    this.#active.add(node);
    try {
      const out = this.#resolve(node, bound);
      return out && out.length <= MAX_VARIANTS ? [...new Set(out)] : undefined;
    } finally {
      this.#active.delete(node);
    }
  }

  #resolve(node: ts.Expression, bound: Map<ts.Symbol, string[]>): string[] | undefined {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node) || ts.isNumericLiteral(node)) {
      return [node.text];
    }
    if (ts.isParenthesizedExpression(node) || ts.isAsExpression(node) || ts.isSatisfiesExpression(node)) {
      return this.resolve(node.expression, bound);
    }
    if (ts.isTemplateExpression(node)) {
      let out = [node.head.text];
      for (const span of node.templateSpans) {
        const values = this.resolve(span.expression, bound);
        if (!values) return undefined;
        out = out.flatMap((before) => values.map((v) => before + v + span.literal.text));
        if (out.length > MAX_VARIANTS) return undefined;
      }
      return out;
    }
    const operator = ts.isBinaryExpression(node) ? ARITHMETIC[node.operatorToken.kind] : undefined;
    if (ts.isBinaryExpression(node) && operator) {
      const left = this.resolve(node.left, bound);
      const right = this.resolve(node.right, bound);
      if (!left || !right) return undefined;
      const numeric = checkerOf().getTypeAtLocation(node).flags & ts.TypeFlags.NumberLike;
      if (!numeric) return operator === '+' ? left.flatMap((l) => right.map((r) => l + r)) : undefined;
      return left.flatMap((l) => right.map((r) => String(arithmetic(operator, Number(l), Number(r)))));
    }
    if (ts.isConditionalExpression(node)) {
      const a = this.resolve(node.whenTrue, bound);
      const b = this.resolve(node.whenFalse, bound);
      return a && b ? [...a, ...b] : undefined;
    }
    if (ts.isIdentifier(node)) return this.#resolveIdentifier(node, bound);
    if (ts.isCallExpression(node)) {
      const fn = calleeOf(node);
      const returned = fn && returnedExpression(fn);
      if (!fn || !returned) return undefined;
      const inner = new Map(bound);
      for (const [i, param] of fn.parameters.entries()) {
        const sym = symbolOf(param.name);
        const arg = node.arguments[i] ?? param.initializer;
        if (!sym || !arg || ts.isSpreadElement(arg)) continue;
        const values = this.resolve(arg, bound);
        if (values) inner.set(sym, values);
      }
      return this.resolve(returned, inner);
    }
    return undefined;
  }

  #resolveIdentifier(node: ts.Identifier, bound: Map<ts.Symbol, string[]>): string[] | undefined {
    const sym = symbolOf(node);
    if (!sym) return undefined;
    const known = bound.get(sym);
    if (known) return known;
    const decl = sym.declarations?.[0];
    if (!decl) return undefined;
    if (
      ts.isVariableDeclaration(decl) &&
      decl.initializer &&
      ts.isVariableDeclarationList(decl.parent) &&
      decl.parent.flags & ts.NodeFlags.Const
    ) {
      return this.resolve(decl.initializer, new Map());
    }
    if (ts.isParameter(decl) && ts.isIdentifier(decl.name)) {
      // A function's parameter: what each call the service reaches passes.
      const fn = decl.parent as FunctionLike;
      const index = fn.parameters.indexOf(decl);
      const calls = this.calls.get(fn) ?? [];
      if (!calls.length) return undefined;
      const out: string[] = [];
      for (const call of calls) {
        const arg = call.arguments[index] ?? decl.initializer;
        if (!arg || ts.isSpreadElement(arg)) return undefined;
        const values = this.resolve(arg, new Map());
        if (!values) return undefined;
        out.push(...values);
      }
      return out;
    }
    return undefined;
  }
}

/** Every SQL text a service reaches (as written) and the source files the walk read. */
function walk(service: string) {
  const checker = checkerOf();
  const main = program?.getSourceFile(join(ROOT, `services/${service}/src/main.ts`));
  if (!main) throw new Error(`no services/${service}/src/main.ts`);
  const seen = new Set<ts.Node>();
  const queue: ts.Node[] = [];
  const files = new Set<string>([main.fileName]);
  for (const st of main.statements) {
    seen.add(st);
    queue.push(st);
  }
  const found: { node: ts.Node; decl: ts.Node }[] = [];
  const resolver = new Resolver();
  while (queue.length) {
    const decl = queue.pop();
    if (!decl) break;
    files.add(decl.getSourceFile().fileName);
    const visit = (n: ts.Node) => {
      const text = sqlText(n);
      if (text !== undefined && SQL.test(text)) found.push({ node: n, decl });
      if (ts.isCallExpression(n)) {
        const fn = calleeOf(n);
        if (fn) resolver.calls.set(fn, [...(resolver.calls.get(fn) ?? []), n]);
      }
      if (ts.isIdentifier(n)) {
        let sym = checker.getSymbolAtLocation(n);
        // Through re-exports (a package's index.ts): each file on the way is one the inventory depends on.
        while (sym && sym.flags & ts.SymbolFlags.Alias) {
          for (const d of sym.declarations ?? []) if (inRepo(d.getSourceFile())) files.add(d.getSourceFile().fileName);
          let next: ts.Symbol | undefined;
          try {
            next = checker.getImmediateAliasedSymbol(sym);
          } catch {}
          if (!next || next === sym) break;
          sym = next;
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
  return { found, files, resolver };
}

function where(node: ts.Node) {
  const sf = node.getSourceFile();
  return { file: relative(ROOT, sf.fileName), line: sf.getLineAndCharacterOfPosition(node.getStart()).line + 1 };
}

/** The function whose one returned expression `node` is. */
function functionReturning(node: ts.Node): FunctionLike | undefined {
  let n = node;
  while (ts.isParenthesizedExpression(n.parent)) n = n.parent;
  const parent = n.parent;
  const fn = ts.isReturnStatement(parent) ? parent.parent?.parent : parent;
  if (
    fn &&
    (ts.isFunctionDeclaration(fn) ||
      ts.isArrowFunction(fn) ||
      ts.isFunctionExpression(fn) ||
      ts.isMethodDeclaration(fn))
  ) {
    return returnedExpression(fn) === n ? fn : undefined;
  }
  return undefined;
}

/** Whether `node` is inside a `${...}` of a template (a part of a bigger text). */
function insideTemplate(node: ts.Node): boolean {
  for (let n = node.parent; n && !ts.isSourceFile(n); n = n.parent) if (ts.isTemplateSpan(n)) return true;
  return false;
}

/** A template with each `${...}` that has one value put in, the others as written. */
function partlyResolved(resolver: Resolver, node: ts.Node): string {
  if (!ts.isTemplateExpression(node)) return sqlText(node) ?? '';
  let s = node.head.text;
  for (const span of node.templateSpans) {
    const values = resolver.resolve(span.expression, new Map());
    s += `${values?.length === 1 ? values[0] : `\${${span.expression.getText()}}`}${span.literal.text}`;
  }
  return s;
}

/** Every SQL text a service reaches, as written (what the first version of this script printed). */
export function reach(service: string): FoundSql[] {
  return walk(service).found.map(({ node, decl }) => ({
    ...where(node),
    sql: sqlText(node) ?? '',
    decl: `${relative(ROOT, decl.getSourceFile().fileName)}: ${(decl.getText().split('\n')[0] ?? '').slice(0, 80)}`,
  }));
}

/** A service's statements, resolved; and the repository files (with their sha256) the result depends on. */
export function inventory(service: string): { inventory: ServiceInventory; files: Set<string> } {
  const { found, files, resolver } = walk(service);
  const statements: ServiceStatement[] = [];
  const unresolved: UnresolvedStatement[] = [];
  for (const { node } of found) {
    const text = sqlText(node) ?? '';
    // A fragment (a condition, a subquery) is checked inside the statements it is put in.
    if (!STATEMENT.test(text)) continue;
    // A function returning a statement: where it is called to be put inside another statement, that one is checked;
    // here only the calls that run it on its own count.
    const fn = functionReturning(node);
    const calls = fn && resolver.calls.get(fn);
    if (fn && calls) {
      const onItsOwn = calls.filter((call) => !insideTemplate(call));
      if (!onItsOwn.length) continue;
      resolver.calls.set(fn, onItsOwn);
    }
    const forms = resolver.resolve(node as ts.Expression, new Map());
    if (fn && calls) resolver.calls.set(fn, calls);
    if (forms) statements.push({ ...where(node), statements: forms });
    else unresolved.push({ ...where(node), text: partlyResolved(resolver, node) });
  }
  const byPlace = (a: { file: string; line: number }, b: { file: string; line: number }) =>
    a.file.localeCompare(b.file) || a.line - b.line;
  statements.sort(byPlace);
  unresolved.sort(byPlace);
  return { inventory: { statements, unresolved }, files };
}

export interface StatementsFile {
  /** Per service, the statements it can run and those the walk cannot resolve. */
  services: Record<string, ServiceInventory>;
}

/** The statements of every service, as the code is now. */
export function statementsFile(): StatementsFile {
  const services: Record<string, ServiceInventory> = {};
  for (const service of SERVICES) services[service] = inventory(service).inventory;
  return { services };
}

if (import.meta.main) {
  const arg = process.argv[2] ?? 'ingest';
  console.log(JSON.stringify({ found: reach(arg), ...inventory(arg).inventory }, null, 1));
}
