import { BlockList, isIP } from 'node:net';
import { resolve } from 'node:path';
import { isInherited, isPath, type Address, type ListenSpec } from './address.js';
import { activationPresent } from './master/activation.js';
import { UsageError } from './errors.js';
import type { EngineKind, Mode, WorkerConfig } from './ipc.js';
import type { LogFormat } from './log.js';
import type { HealthOptions } from './health/health.js';
import type { MonitorOptions } from './health/monitor.js';
import { notifySupported } from './backend/notify-socket.js';
import { OPTIONS, TCP_READY_DELAY_MS, tableDefaults, type Defaults } from './option-table.js';
import { STDOUT } from './proxy/access-log.js';

export { parseDuration } from './option-types.js';

export type BackendKind = 'unix' | 'tcp' | 'port-env';

/** Everything the library needs; the CLI only fills this in. Durations are milliseconds. */
export interface Options {
  /** Empty (and no listenTls): every socket systemd passed in (LISTEN_FDS). */
  listen: ListenSpec[];
  /** Public addresses that speak TLS (h2 and http/1.1 by ALPN). */
  listenTls: ListenSpec[];
  /** PEM files, pairwise: tlsCert[i] goes with tlsKey[i]. */
  tlsCert: string[];
  tlsKey: string[];
  /** Plain-HTTP requests get a redirect to https:// (ACME challenges excepted). */
  redirectHttps: boolean;
  /** Names to obtain certificates for by ACME (HTTP-01 on a plain listener). */
  acmeDomain: string[];
  acmeEmail?: string;
  acmeDirectory: string;
  /** PEM roots trusted for the ACME directory's own TLS. */
  acmeCa?: string;
  /** Account key and certificates; default under $XDG_STATE_HOME. */
  acmeCache?: string;
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
  /** After a deploy, the previous generation runs on, unrouted, this long (0: drained at once). */
  keepPreviousMs: number;
  /** How long new proxy workers may take to be ready in an upgrade. */
  upgradeTimeoutMs: number;
  queueTimeoutMs: number;
  headerTimeoutMs: number;
  keepAliveTimeoutMs: number;
  healthPath: string;
  healthIntervalMs: number;
  healthRise: number;
  /** How long one health check may take. */
  healthTimeoutMs: number;
  /** Between checks of the serving generation's instances; 0: none. */
  liveIntervalMs: number;
  /** Consecutive failed checks that take a serving instance out of rotation. */
  healthFall: number;
  /** Out of rotation this long, an instance is replaced. */
  unhealthyRestartMs: number;
  /** A backend silent this long with a request in flight: 504, or the client connection cut. */
  backendTimeoutMs: number;
  /** `notify`: a new instance is ready when it says so (READY=1 on NOTIFY_SOCKET). */
  health: 'auto' | 'notify';
  healthCmd?: string;
  /** Healthy = still alive after this long (Server::Starter's --interval). */
  readyDelayMs?: number;
  /** Parent of the private runtime directory (sockets); default $XDG_RUNTIME_DIR or the temp dir. */
  runtimeDir?: string;
  trustProxy: string[];
  /** One JSON line per request (http mode): `stdout`, or a file appended to. */
  accessLog?: string;
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

/** Every default in the option table, and tcp mode's --ready-delay. */
export const defaults: Readonly<Defaults & { tcpReadyDelayMs: number }> = { ...tableDefaults(), tcpReadyDelayMs: TCP_READY_DELAY_MS };

export type OptionsInput = Partial<Options> & { listen: ListenSpec[]; command: string[] };

/**
 * Options from the CLI or a programmatic caller: the table's defaults filled in, every value
 * checked by its table entry (callers of the API skip the parsing, not the checks), then the
 * rules that involve more than one option.
 */
export function resolveOptions(input: OptionsInput): Options {
  const o = { ...tableDefaults(), ...stripUndefined(input) } as Options;
  for (const d of OPTIONS) {
    const v = o[d.key];
    if (v !== undefined) d.type.check(`--${d.flag}`, v);
  }
  if (o.listen.length === 0 && o.listenTls.length === 0 && !activationPresent()) throw new UsageError('at least one --listen address is required (or sockets from systemd: LISTEN_FDS)');
  if (!Array.isArray(o.command) || o.command.length === 0 || !o.command[0]) throw new UsageError('missing backend command: hotproxy [options] -- <command> [args...]');
  if (o.mode === 'tcp' && o.healthCmd === undefined && o.readyDelayMs === undefined && o.health !== 'notify') o.readyDelayMs = TCP_READY_DELAY_MS;
  if (o.health === 'notify' && !notifySupported()) throw new UsageError('--health notify needs unix datagram sockets (node-unix-socket), which have no build for this platform');
  for (const cidr of o.trustProxy) parseCidr(cidr);
  if (o.accessLog !== undefined && o.mode === 'tcp') throw new UsageError('--access-log is for http mode: tcp mode has no requests to log');
  if (o.metrics) checkAdmin(o.metrics, [...o.listen, ...o.listenTls]);
  checkTls(o);
  return o;
}

/** What every proxy worker is told of the options; the rest of its config is its own. */
export function workerConfig(o: Options): Omit<WorkerConfig, 'index' | 'fds' | 'tlsFds'> {
  return {
    redirectHttps: o.redirectHttps,
    mode: o.mode, engine: o.engine, queueTimeoutMs: o.queueTimeoutMs, headerTimeoutMs: o.headerTimeoutMs,
    keepAliveTimeoutMs: o.keepAliveTimeoutMs, backendTimeoutMs: o.backendTimeoutMs, trustProxy: o.trustProxy,
    // A worker started later (a restart, an upgrade) opens the same file whatever its cwd.
    ...(o.accessLog === undefined ? {} : { accessLog: o.accessLog === STDOUT ? STDOUT : resolve(o.accessLog) }),
    log: { level: o.logLevel, format: o.logFormat },
  };
}

/** How a generation's instances are checked, during a deploy and while serving. */
export function healthOptions(o: Options): HealthOptions {
  return {
    mode: o.mode, path: o.healthPath, intervalMs: o.healthIntervalMs, rise: o.healthRise,
    cmd: o.healthCmd, readyDelayMs: o.readyDelayMs, timeoutMs: o.healthTimeoutMs, notify: o.health === 'notify',
  };
}

/**
 * The serving generation's checks, or undefined when there are none: --live-interval 0, or
 * nothing to check with (tcp mode without --health-cmd, or --ready-delay chosen over a GET).
 */
export function liveOptions(o: Options): MonitorOptions | undefined {
  const probe = o.healthCmd !== undefined || (o.mode === 'http' && o.readyDelayMs === undefined);
  if (o.liveIntervalMs === 0 || !probe) return undefined;
  return { intervalMs: o.liveIntervalMs, timeoutMs: o.healthTimeoutMs, fall: o.healthFall, rise: o.healthRise, restartAfterMs: o.unhealthyRestartMs };
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
  const [address = '', prefixText, ...more] = cidr.split('/');
  const v = isIP(address);
  if (v === 0) throw new UsageError(`--trust-proxy: "${cidr}" is not an address or CIDR range`);
  const max = v === 4 ? 32 : 128;
  // Number('') is 0: "10.0.0.0/" would trust every peer.
  const prefix = prefixText === undefined ? max : /^\d+$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!Number.isInteger(prefix) || prefix > max || more.length > 0) throw new UsageError(`--trust-proxy: bad prefix in "${cidr}"`);
  return { address, prefix, family: v === 4 ? 'ipv4' : 'ipv6' };
}

function checkAdmin(admin: Address, listen: ListenSpec[]): void {
  const clash = listen.some((l) => !isInherited(l) && (isPath(l) || isPath(admin)
    ? isPath(l) && isPath(admin) && l.path === admin.path
    : l.port !== 0 && l.port === admin.port && (l.host === admin.host || l.host === '0.0.0.0' || admin.host === '0.0.0.0')));
  if (clash) throw new UsageError('--metrics must be an address of its own, not one of the public --listen addresses');
}

function checkTls(o: Options): void {
  if (o.tlsCert.length !== o.tlsKey.length) throw new UsageError(`--tls-cert and --tls-key come in pairs (got ${o.tlsCert.length} certificates and ${o.tlsKey.length} keys)`);
  const certs = o.tlsCert.length > 0 || o.acmeDomain.length > 0;
  if (o.listenTls.length > 0 && !certs) throw new UsageError('--listen-tls needs a certificate: --tls-cert with --tls-key, or --acme-domain');
  if (certs && o.listenTls.length === 0) throw new UsageError(`${o.tlsCert.length ? '--tls-cert' : '--acme-domain'} needs a --listen-tls address to serve it on`);
  if (o.listenTls.length > 0 && o.mode === 'tcp') throw new UsageError('--listen-tls is for http mode: tcp mode passes TLS through to the backend untouched');
  if (o.redirectHttps && o.listenTls.length === 0) throw new UsageError('--redirect-https needs a --listen-tls address to redirect to');
  // HTTP-01: the CA fetches the challenge over plain HTTP on port 80 of the name.
  if (o.acmeDomain.length > 0 && o.listen.length === 0) throw new UsageError('--acme-domain needs a plain --listen address for the HTTP-01 challenge (port 80 as the CA sees it)');
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
