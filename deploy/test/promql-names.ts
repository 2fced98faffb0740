// The metric names a PromQL expression reads, for checking alerts and dashboards against what is exported. Not a
// PromQL parser: strings, label matchers, ranges and grouping clauses are cut out, and what is left that is not a
// function or a keyword is a metric name. `{__name__=~"…"}` selectors come back as patterns.

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'inf',
  'nan',
]);

export interface ReadMetrics {
  names: string[];
  /** Regular expressions of `__name__=~` selectors. */
  patterns: string[];
}

export function metricNamesIn(expr: string): ReadMetrics {
  const patterns: string[] = [];
  let rest = expr.replace(/\{\s*__name__\s*=~\s*"((?:[^"\\]|\\.)*)"[^}]*\}/g, (_, re: string) => {
    patterns.push(re);
    return ' ';
  });
  rest = rest
    .replace(/"(?:[^"\\]|\\.)*"/g, ' ') // strings (label values, label_replace arguments)
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges, Grafana's $__rate_interval
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of rest.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = m[0];
    const after = rest.slice((m.index ?? 0) + word.length).trimStart();
    if (after.startsWith('(') || KEYWORDS.has(word)) continue; // a function or an operator
    const before = rest.slice(0, m.index ?? 0);
    if (/\$$/.test(before) || /[0-9.]$/.test(before)) continue; // a Grafana variable, or a number like 1e3
    names.add(word);
  }
  return { names: [...names], patterns };
}

/** `smgw_(a|b)_x` → ['smgw_a_x', 'smgw_b_x'] (one group of plain alternatives); anything else as it is. */
export function expandAlternatives(pattern: string): string[] {
  const m = /^([a-z0-9_]*)\(([a-z0-9_|]+)\)([a-z0-9_]*)$/.exec(pattern);
  if (!m) return [pattern];
  return (m[2] ?? '').split('|').map((alt) => `${m[1]}${alt}${m[3]}`);
}
