// Pino JSON lines → one readable line: time, level, message, then the interesting fields.
const LEVELS: Record<string, string> = {
  trace: '\x1b[90mTRACE\x1b[0m',
  debug: '\x1b[90mDEBUG\x1b[0m',
  info: '\x1b[32mINFO \x1b[0m',
  warn: '\x1b[33mWARN \x1b[0m',
  error: '\x1b[31mERROR\x1b[0m',
  fatal: '\x1b[41mFATAL\x1b[0m',
};
const HIDDEN = new Set(['level', 'time', 'msg', 'service', 'pid', 'hostname']);

export function formatLogLine(line: string): string {
  if (!line.startsWith('{')) return line;
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line);
  } catch {
    return line;
  }
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 23) : '';
  const level = LEVELS[String(entry.level)] ?? String(entry.level ?? '');
  const fields = Object.entries(entry)
    .filter(([k]) => !HIDDEN.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(' ');
  return `${time} ${level} ${String(entry.msg ?? '')}${fields ? `  \x1b[90m${fields}\x1b[0m` : ''}`;
}
