import type { Setting } from './parsers.ts';

// biome-ignore lint/suspicious/noExplicitAny: a spec holds settings of any value type
export type Spec = Record<string, Setting<any>>;
export type ConfigOf<S extends Spec> = {
  [K in keyof S]: S[K] extends Setting<infer T, true>
    ? T
    : S[K] extends Setting<infer T, false>
      ? T | undefined
      : never;
};

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  readonly variable: string;
  readonly problem: string;
  constructor(variable: string, problem: string) {
    super(`${variable}: ${problem}`);
    this.name = 'ConfigError';
    this.variable = variable;
    this.problem = problem;
  }
}

/** Parses every setting of `spec` from `env`; throws ConfigError for the first bad one. */
export function loadConfig<S extends Spec>(spec: S, env: NodeJS.ProcessEnv = process.env): ConfigOf<S> {
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(spec)) {
    const given = env[s.env];
    const raw = given === undefined || given === '' ? s.fallback : given;
    if (raw === undefined) {
      if (s.required) throw new ConfigError(s.env, `is required (${s.help})`);
      out[key] = undefined;
      continue;
    }
    try {
      out[key] = s.parse(raw);
    } catch (err) {
      const shown = s.secret ? '(hidden)' : JSON.stringify(raw);
      throw new ConfigError(s.env, `${(err as Error).message} (got ${shown})`);
    }
  }
  return out as ConfigOf<S>;
}

/**
 * For a service's main: load, or print one line naming the bad variable and exit 78 (EX_CONFIG).
 * With `--print-config` in argv, prints the resolved settings (secrets hidden) and exits 0.
 */
export function loadConfigOrExit<S extends Spec>(
  service: string,
  spec: S,
  env: NodeJS.ProcessEnv = process.env,
  argv: string[] = process.argv,
): ConfigOf<S> {
  const config = exitOnConfigError(service, () => loadConfig(spec, env));
  if (argv.includes('--print-config')) {
    process.stdout.write(`${JSON.stringify(describeConfig(spec, config), null, 2)}\n`);
    process.exit(0);
  }
  return config;
}

/**
 * Runs a check of settings that belong together (after loadConfigOrExit): a ConfigError it throws prints one line
 * naming the variable and exits 78, like a malformed setting.
 */
export function exitOnConfigError<T>(service: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${service}: bad setting ${err.message}\n`);
    process.exit(78);
  }
}

/** Every setting the spec reads, by variable name: secrets replaced by "(hidden)", unset ones null. */
export function describeConfig<S extends Spec>(spec: S, config: ConfigOf<S>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(spec)) {
    const value = (config as Record<string, unknown>)[key];
    out[s.env] = value === undefined ? null : s.secret ? '(hidden)' : value;
  }
  return out;
}
