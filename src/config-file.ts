// A JSON config file for long flag lists: keys are the long flag names ("drain-timeout" or
// "drainTimeout"), values as on the command line ("30s", 2, ["8080", "8443"]), plus
// "command": ["node", "app.js"]. Precedence: command line > HOTPROXY_* variables > file > defaults.
import { readFileSync } from 'node:fs';
import type { Command, Option } from 'commander';
import { UsageError } from './errors.js';

export const ENV_PREFIX = 'HOTPROXY_';

/** HOTPROXY_DRAIN_TIMEOUT for --drain-timeout. */
export function envName(o: Option): string {
  return ENV_PREFIX + o.name().toUpperCase().replaceAll('-', '_');
}

/** The --config value (or HOTPROXY_CONFIG), found before the real parse needs it. */
export function configPath(argv: string[], env: NodeJS.ProcessEnv = process.env): string | undefined {
  const end = argv.indexOf('--');
  const args = end >= 0 ? argv.slice(0, end) : argv;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--config') return args[i + 1];
    if (args[i]!.startsWith('--config=')) return args[i]!.slice('--config='.length);
  }
  return env.HOTPROXY_CONFIG || undefined;
}

/**
 * Applies the file to a parsed command: a value is taken only where neither the command line
 * nor the environment gave one. Returns the file's "command", if any.
 */
export function applyConfigFile(cmd: Command, path: string): string[] | undefined {
  const raw = read(path);
  let command: string[] | undefined;
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'command') {
      if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'string')) {
        throw new UsageError(`${path}: "command" must be a list of strings, e.g. ["node", "app.js"]`);
      }
      command = value;
      continue;
    }
    const opt = cmd.options.find((o) => o.long === `--${key}` || o.attributeName() === key);
    if (!opt || key === 'config' || opt.long === '--help' || opt.long === '--version') {
      throw new UsageError(`${path}: unknown setting "${key}"`);
    }
    const name = opt.attributeName();
    const source = cmd.getOptionValueSource(name);
    if (source === 'cli' || source === 'env') continue;
    cmd.setOptionValueWithSource(name, convert(opt, value, path, key), 'config');
  }
  return command;
}

function read(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new UsageError(`${path} must hold a JSON object of settings`);
  return data as Record<string, unknown>;
}

/** The same parsing and checks a command-line value gets. */
function convert(opt: Option, value: unknown, path: string, key: string): unknown {
  const bad = (): never => { throw new UsageError(`${path}: "${key}" must be ${opt.isBoolean() ? 'true or false' : 'a string or number'}`); };
  if (opt.isBoolean()) return typeof value === 'boolean' ? value : bad();
  const list = Array.isArray(value) ? value : [value];
  if (!list.every((v) => typeof v === 'string' || typeof v === 'number')) bad();
  if (!Array.isArray(value) && list.length !== 1) bad();
  const parse = (opt as Option & { parseArg?: (v: string, prev: unknown) => unknown }).parseArg;
  let out: unknown = Array.isArray(opt.defaultValue) ? [] : undefined;
  for (const v of list.map(String)) {
    if (opt.argChoices && !opt.argChoices.includes(v)) throw new UsageError(`${path}: "${key}" must be one of ${opt.argChoices.join(', ')} (got "${v}")`);
    out = parse ? parse(v, out) : v;
  }
  if (Array.isArray(value) && !Array.isArray(out)) throw new UsageError(`${path}: "${key}" takes one value, not a list`);
  return out;
}
