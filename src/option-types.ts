// The kinds of option value (the table's "parser" column). Each reads text from the command
// line, a HOTPROXY_* variable or the config file, and checks a value however it came, since
// programmatic callers skip the text: nothing reaches Node or a library unchecked, where a bad
// value would surface as a stack trace, an exit 1 or, worse, silently as something else.
import { isIP } from 'node:net';
import { formatListen, isInherited, parseListen, type Address, type ListenSpec } from './address.js';
import { UsageError } from './errors.js';

export interface OptionType<T> {
  /** Text to a value; a UsageError naming the flag if it is not one. */
  parse(flag: string, text: string): T;
  /** A UsageError naming the flag if the value is of the wrong kind or out of range. */
  check(flag: string, value: unknown): void;
  /** The value as one would write it on the command line (--help, README). */
  show(value: T): string;
  readonly choices?: readonly string[];
  /** Repeatable and comma-separated; each text adds to the list. */
  readonly list?: boolean;
}

// setTimeout fires at once, with only a warning, for more than 2^31-1 ms: a 30-day timeout
// would be a 1 ms one. The largest whole number of minutes below that, so it can be typed.
export const TIMER_MAX_MS = 35_791 * 60_000;

/** Parses `250`, `250ms`, `1.5s`, `2m` into milliseconds (a bare number is milliseconds). */
export function parseDuration(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: "${text}" is not a duration (e.g. 500ms, 30s, 2m)`);
  const n = Number(m[1]);
  return Math.round(m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n);
}

// A minute is said as 60s, as nginx and HAProxy users write it; whole minutes from two up as m.
export function showDuration(ms: number): string {
  if (ms === 0) return '0';
  return ms % 60_000 === 0 && ms >= 120_000 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** `zero`: 0 allowed (a delay); otherwise it must be positive (a timeout or an interval). */
export function duration(opts: { zero?: boolean; maxMs?: number } = {}): OptionType<number> {
  const max = opts.maxMs ?? TIMER_MAX_MS;
  return {
    parse: parseDuration,
    check(flag, v) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (v === 0 && !opts.zero)) {
        throw new UsageError(opts.zero ? `${flag} must be a duration` : `${flag} must be a positive duration`);
      }
      if (v > max) throw new UsageError(`${flag} must be at most ${showDuration(max)} (got ${showDuration(v)})`);
    },
    show: showDuration,
  };
}

/** A whole number of at least 1. `max` keeps a typo (10000 workers) from forking thousands of processes. */
export function count(max = Number.MAX_SAFE_INTEGER): OptionType<number> {
  return {
    parse(flag, text) {
      if (!/^\d+$/.test(text.trim())) throw new UsageError(`${flag}: "${text}" is not a whole number`);
      return Number(text);
    },
    check(flag, v) {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new UsageError(`${flag} must be a whole number of at least 1 (got ${String(v)})`);
      if (v > max) throw new UsageError(`${flag} must be at most ${max} (got ${v})`);
    },
    show: String,
  };
}

/** A non-empty string: an empty path or command otherwise means something else further on. */
export function text(extra?: (flag: string, v: string) => void): OptionType<string> {
  return {
    parse: (_flag, t) => t,
    check(flag, v) {
      if (typeof v !== 'string') throw new UsageError(`${flag} must be a string`);
      if (v === '') throw new UsageError(`${flag} must not be empty`);
      extra?.(flag, v);
    },
    show: (v) => v,
  };
}

/** An on/off flag: given bare on the command line; `true`/`false` (or 1/0, yes/no) elsewhere. */
export function toggle(): OptionType<boolean> {
  return {
    parse(flag, t) {
      const v = t.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return true;
      if (['false', '0', 'no', 'off'].includes(v)) return false;
      throw new UsageError(`${flag} must be true or false (got "${t}")`);
    },
    check(flag, v) {
      if (typeof v !== 'boolean') throw new UsageError(`${flag} must be true or false`);
    },
    show: (v) => (v ? 'on' : 'off'),
  };
}

/** An http(s) URL. */
export function url(): OptionType<string> {
  return text((flag, v) => {
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      throw new UsageError(`${flag} must be a URL (got "${v}")`);
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new UsageError(`${flag} must be an https:// URL (got "${v}")`);
  });
}

/** A DNS name a certificate may be issued for (a `*.` wildcard label allowed first). */
export function hostname(): OptionType<string> {
  return text((flag, v) => {
    if (!/^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(v) || v.length > 253) {
      throw new UsageError(`${flag}: "${v}" is not a DNS name`);
    }
  });
}

export function choice<T extends string>(values: readonly T[]): OptionType<T> {
  return {
    parse: (_flag, t) => t as T,
    check(flag, v) {
      if (!values.includes(v as T)) throw new UsageError(`${flag} must be one of ${values.join(', ')} (got "${String(v)}")`);
    },
    show: (v) => v,
    choices: values,
  };
}

export function list<T>(item: OptionType<T>): OptionType<T[]> {
  return {
    parse: (flag, t) => t.split(',').map((x) => x.trim()).filter(Boolean).map((x) => item.parse(flag, x)),
    check(flag, v) {
      if (!Array.isArray(v)) throw new UsageError(`${flag} must be a list`);
      for (const x of v) item.check(flag, x);
    },
    show: (v) => v.map((x) => item.show(x)).join(','),
    list: true,
  };
}

// sun_path holds 108 bytes on Linux, 104 on macOS and the BSDs, NUL included; libuv binds a
// longer path cut short, without an error, so the socket would appear under another name.
export const SOCKET_PATH_MAX = process.platform === 'linux' ? 107 : 103;

export function checkSocketPath(flag: string, path: string): void {
  const n = Buffer.byteLength(path);
  if (n > SOCKET_PATH_MAX) throw new UsageError(`${flag}: socket path ${path} is ${n} bytes; at most ${SOCKET_PATH_MAX} fit in a unix socket address`);
}

function checkPort(what: string, port: unknown): void {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`${what}: port must be 0-65535`);
}

function isAddressLike(v: unknown): v is ListenSpec {
  return typeof v === 'object' && v !== null && ('path' in v || 'host' in v || 'fd' in v || 'fdName' in v);
}

/** A --listen value. The master binds without a name lookup, so a host must be an IP address. */
export const listenAddress: OptionType<ListenSpec> = {
  parse: (_flag, t) => parseListen(t),
  check(flag, v) {
    if (!isAddressLike(v)) throw new UsageError(`${flag} must be an address`);
    if (isInherited(v)) return;
    const bad = `bad ${flag} address "${formatListen(v)}"`;
    if ('path' in v) return checkSocketPath(flag, v.path);
    if (isIP(v.host) === 0) throw new UsageError(`${bad}: "${v.host}" is not an IP address (localhost is the only name taken)`);
    checkPort(bad, v.port);
  },
  show: formatListen,
};

/** --metrics: an address to listen on itself, never one systemd passed (those are public). */
export const adminAddress: OptionType<Address> = {
  parse: (_flag, t) => parseListen(t) as Address,
  check(flag, v) {
    if (!isAddressLike(v)) throw new UsageError(`${flag} must be an address`);
    if (isInherited(v)) throw new UsageError(`${flag} takes an address or a socket path, not a socket from systemd`);
    if ('path' in v) return checkSocketPath(flag, v.path);
    checkPort(`bad ${flag} address "${formatListen(v)}"`, v.port);
  },
  show: formatListen,
};
