import { BlockList, isIP } from 'node:net';
import { isInherited, isPath, type Address, type ListenSpec } from './address.js';
import { activationPresent } from './master/activation.js';
import { UsageError } from './errors.js';
import type { EngineKind, Mode } from './ipc.js';
import type { LogFormat } from './log.js';

export type BackendKind = 'unix' | 'tcp' | 'port-env';

/** Everything the library needs; the CLI only fills this in. Durations are milliseconds. */
export interface Options {
  /** Empty: every socket systemd passed in (LISTEN_FDS). */
  listen: ListenSpec[];
  command: string[];
  mode: Mode;
  /** http mode's data path. */
  engine: EngineKind;
  backend: BackendKind;
  /** Backend instances per generation. */
  workers: number;
  proxyWorkers: number;
  deployTimeoutMs: number;
  drainTimeoutMs: number;
  /** How long new proxy workers may take to be ready in an upgrade. */
  upgradeTimeoutMs: number;
  queueTimeoutMs: number;
  headerTimeoutMs: number;
  keepAliveTimeoutMs: number;
  healthPath: string;
  healthIntervalMs: number;
  healthRise: number;
  healthCmd?: string;
  /** Healthy = still alive after this long (Server::Starter's --interval). */
  readyDelayMs?: number;
  /** Parent of the private runtime directory (sockets); default $XDG_RUNTIME_DIR or the temp dir. */
  runtimeDir?: string;
  trustProxy: string[];
  /** Control socket path; default: control.sock in the runtime directory. */
  control?: string;
  /** Written once serving (atomically), removed at exit. */
  pidFile?: string;
  /** Server::Starter's `<generation>:<pid>` lines, kept current. */
  statusFile?: string;
  logLevel: string;
  logFormat: LogFormat;
  /** The admin listener: /metrics (Prometheus), /ready, /live. Never a public address. */
  metrics?: Address;
}

export const defaults = {
  mode: 'http' as Mode,
  engine: 'raw' as EngineKind,
  backend: 'unix' as BackendKind,
  workers: 1,
  proxyWorkers: 1,
  deployTimeoutMs: 30_000,
  drainTimeoutMs: 30_000,
  upgradeTimeoutMs: 30_000,
  queueTimeoutMs: 10_000,
  headerTimeoutMs: 30_000,
  // Longer than common client idle timeouts, so the client, not the proxy, closes idle
  // keep-alive connections: a proxy-side close races a client that is about to send.
  keepAliveTimeoutMs: 65_000,
  healthPath: '/',
  healthIntervalMs: 50,
  healthRise: 2,
  // tcp mode cannot speak the app's protocol, so without --health-cmd it falls back to
  // Server::Starter's rule: alive for a second = ready.
  tcpReadyDelayMs: 1_000,
  trustProxy: [] as string[],
  logLevel: 'info',
  logFormat: 'auto' as LogFormat,
};

export type OptionsInput = Partial<Options> & { listen: ListenSpec[]; command: string[] };

export function resolveOptions(input: OptionsInput): Options {
  const o: Options = { ...defaults, ...stripUndefined(input) } as Options;
  if (o.listen.length === 0 && !activationPresent()) throw new UsageError('at least one --listen address is required (or sockets from systemd: LISTEN_FDS)');
  if (o.command.length === 0 || !o.command[0]) throw new UsageError('missing backend command: hotproxy [options] -- <command> [args...]');
  oneOf('--mode', o.mode, ['http', 'tcp']);
  oneOf('--engine', o.engine, ['raw', 'node']);
  oneOf('--backend', o.backend, ['unix', 'tcp', 'port-env']);
  oneOf('--log-format', o.logFormat, ['json', 'pretty', 'auto']);
  positiveInt('--workers', o.workers);
  positiveInt('--proxy-workers', o.proxyWorkers);
  positiveInt('--health-rise', o.healthRise);
  for (const [flag, v] of [
    ['--deploy-timeout', o.deployTimeoutMs], ['--drain-timeout', o.drainTimeoutMs], ['--upgrade-timeout', o.upgradeTimeoutMs],
    ['--queue-timeout', o.queueTimeoutMs], ['--header-timeout', o.headerTimeoutMs],
    ['--keepalive-timeout', o.keepAliveTimeoutMs], ['--health-interval', o.healthIntervalMs],
  ] as const) {
    if (!Number.isFinite(v) || v <= 0) throw new UsageError(`${flag} must be a positive duration`);
  }
  if (o.readyDelayMs !== undefined && (!Number.isFinite(o.readyDelayMs) || o.readyDelayMs < 0)) {
    throw new UsageError('--ready-delay must be a duration');
  }
  if (!o.healthPath.startsWith('/')) throw new UsageError('--health-path must start with /');
  if (o.mode === 'tcp' && o.healthCmd === undefined && o.readyDelayMs === undefined) {
    o.readyDelayMs = defaults.tcpReadyDelayMs;
  }
  for (const cidr of o.trustProxy) parseCidr(cidr);
  if (o.metrics) checkAdmin(o.metrics, o.listen);
  return o;
}

/** Parses `250`, `250ms`, `1.5s`, `2m` into milliseconds (a bare number is milliseconds). */
export function parseDuration(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: "${text}" is not a duration (e.g. 500ms, 30s, 2m)`);
  const n = Number(m[1]);
  return Math.round(m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n);
}

export function parseCount(flag: string, text: string): number {
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`${flag}: "${text}" is not a whole number`);
  return Number(text);
}

/** A BlockList of the --trust-proxy ranges (`10.0.0.0/8`, `::1`, `127.0.0.1/32`). */
export function trustList(cidrs: string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const { address, prefix, family } = parseCidr(c);
    list.addSubnet(address, prefix, family);
  }
  return list;
}

function parseCidr(cidr: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const [address = '', prefixText] = cidr.split('/');
  const v = isIP(address);
  if (v === 0) throw new UsageError(`--trust-proxy: "${cidr}" is not an address or CIDR range`);
  const max = v === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new UsageError(`--trust-proxy: bad prefix in "${cidr}"`);
  return { address, prefix, family: v === 4 ? 'ipv4' : 'ipv6' };
}

function checkAdmin(admin: Address, listen: ListenSpec[]): void {
  const clash = listen.some((l) => !isInherited(l) && (isPath(l) || isPath(admin)
    ? isPath(l) && isPath(admin) && l.path === admin.path
    : l.port !== 0 && l.port === admin.port && (l.host === admin.host || l.host === '0.0.0.0' || admin.host === '0.0.0.0')));
  if (clash) throw new UsageError('--metrics must be an address of its own, not one of the public --listen addresses');
}

function oneOf(flag: string, value: string, allowed: string[]): void {
  if (!allowed.includes(value)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')} (got "${value}")`);
}

function positiveInt(flag: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new UsageError(`${flag} must be a whole number of at least 1 (got ${v})`);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
