// Where option values come from besides the command line: HOTPROXY_* variables and a JSON config
// file for long flag lists (keys are the long flag names, "drain-timeout" or "drainTimeout";
// values as on the command line, "30s", 2, ["8080", "8443"]; plus "command": ["node", "app.js"]).
// Each source only holds texts; settle() reads an option from the first source that has it, with
// the table's parser, so a bad value is the same error wherever it was written, and a value
// overridden by a stronger source is never looked at.
import { readFileSync } from 'node:fs';
import { UsageError } from './errors.js';
import { envName, OPTIONS, optionByConfigKey, readValue, type AnyOptionDef } from './option-table.js';
import type { Options } from './options.js';

export interface Given {
  /** The texts, as on the command line; may throw for a value that cannot be one. */
  texts: () => string[];
  /** Where it was written, said before an error about it; none for the command line. */
  from?: string;
}

/** Given values by option, from one source. */
export type Source = Map<AnyOptionDef, Given>;

/** Command line, then variables, then the file: the first to give an option decides it. */
export function settle(sources: Source[]): Partial<Options> {
  const out: Record<string, unknown> = {};
  for (const d of OPTIONS) {
    const given = sources.map((s) => s.get(d)).find((g) => g !== undefined);
    if (!given) continue;
    try {
      out[d.key] = readValue(d, given.texts());
    } catch (err) {
      if (given.from !== undefined && err instanceof UsageError) throw new UsageError(`${given.from}: ${err.message}`);
      throw err;
    }
  }
  return out as Partial<Options>;
}

/** HOTPROXY_DRAIN_TIMEOUT=10s for --drain-timeout; set to the empty string still counts as set. */
export function fromEnv(env: NodeJS.ProcessEnv = process.env): Source {
  const source: Source = new Map();
  for (const d of OPTIONS) {
    const name = envName(d.flag);
    const value = env[name];
    if (value !== undefined) source.set(d, { texts: () => [value], from: name });
  }
  return source;
}

/** The file's settings, and its "command" if it has one. */
export function readConfigFile(path: string): { source: Source; command?: string[] } {
  const raw = read(path);
  const source: Source = new Map();
  let command: string[] | undefined;
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'command') {
      if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'string')) {
        throw new UsageError(`${path}: "command" must be a list of strings, e.g. ["node", "app.js"]`);
      }
      command = value;
      continue;
    }
    const d = optionByConfigKey(key);
    if (!d) throw new UsageError(`${path}: unknown setting "${key}"`);
    source.set(d, { texts: () => texts(d, value, path, key), from: path });
  }
  return command === undefined ? { source } : { source, command };
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

/** A JSON value as the texts it would be on the command line: a list only for a list option. */
function texts(d: AnyOptionDef, value: unknown, path: string, key: string): string[] {
  const values = Array.isArray(value) ? value : [value];
  if (!values.every((v) => typeof v === 'string' || typeof v === 'number')) throw new UsageError(`${path}: "${key}" must be a string or number`);
  if (Array.isArray(value) && !d.type.list) throw new UsageError(`${path}: "${key}" takes one value, not a list`);
  return values.map(String);
}
