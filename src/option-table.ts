// The one description of every option. The command line (cli.ts), the HOTPROXY_* variables and
// the config file (config-file.ts), resolveOptions' checks and --help are all made from it, and
// test/unit/options.test.ts holds README.md's Usage table to it. A variable's name and a config
// key are derived from the flag, so they cannot disagree with it.
import type { Options } from './options.js';
import { UsageError } from './errors.js';
import {
  adminAddress, checkSocketPath, choice, count, duration, hostname, list, listenAddress, showDuration, text, toggle, url, type OptionType,
} from './option-types.js';
import type { ListenSpec } from './address.js';

export interface FlagDoc {
  /** The long flag without `--`; also the config-file key. */
  flag: string;
  short?: string;
  /** The value's placeholder in --help. */
  arg: string;
  help: string;
}

export interface OptionDef<K extends keyof Options> extends FlagDoc {
  key: K;
  type: OptionType<NonNullable<Options[K]>>;
  default?: NonNullable<Options[K]>;
  /** Said in --help where the default is not one fixed value. */
  defaultText?: string;
}

export type AnyOptionDef = { [K in keyof Options]-?: OptionDef<K> }[keyof Options];

// tcp mode cannot speak the app's protocol, so without --health-cmd it falls back to
// Server::Starter's rule: alive for a second = ready. Applied in resolveOptions.
export const TCP_READY_DELAY_MS = 1_000;

// What pino takes as a level (test/unit/options.test.ts compares); anything else throws in
// pino's constructor, in the master and in every proxy worker.
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

// Node's http server refuses a headersTimeout above its requestTimeout (5 minutes) and the
// node engine's workers would die at start (the raw engine also falls back to the node engine
// on a Node without the internals it needs).
const NODE_REQUEST_TIMEOUT_MS = 300_000;

export const ACME_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';

// Beyond any machine's cores; a typo (-w 1000000) would otherwise fork until it fails.
const MAX_PROCESSES = 1024;

export const OPTIONS = [
  {
    key: 'listen', flag: 'listen', short: 'l', arg: '<addr>', type: list(listenAddress),
    help: 'public address: PORT, HOST:PORT, [V6]:PORT, a socket path, or a socket from systemd: fd:N, fdname:NAME; none = every socket systemd passed',
  },
  {
    key: 'listenTls', flag: 'listen-tls', arg: '<addr>', type: list(listenAddress), default: [] as ListenSpec[],
    help: 'public address that speaks TLS (HTTP/1.1 and HTTP/2 by ALPN), as --listen; needs --tls-cert/--tls-key or --acme-domain',
  },
  {
    key: 'tlsCert', flag: 'tls-cert', arg: '<file>', type: list(text()), default: [] as string[],
    help: 'PEM certificate (the chain may follow) for --listen-tls; one per --tls-key, chosen by SNI from its names',
  },
  { key: 'tlsKey', flag: 'tls-key', arg: '<file>', type: list(text()), default: [] as string[], help: 'PEM private key of the --tls-cert in the same place' },
  {
    key: 'redirectHttps', flag: 'redirect-https', arg: '', type: toggle(), default: false,
    help: 'answer plain-HTTP requests with a redirect to https:// (ACME challenges excepted)',
  },
  {
    key: 'acmeDomain', flag: 'acme-domain', arg: '<name>', type: list(hostname()), default: [] as string[],
    help: 'obtain and renew a certificate for this name by ACME (HTTP-01 on the plain --listen)',
  },
  { key: 'acmeEmail', flag: 'acme-email', arg: '<email>', type: text(), help: 'ACME account contact' },
  {
    key: 'acmeDirectory', flag: 'acme-directory', arg: '<url>', type: url(), default: ACME_DIRECTORY,
    help: "ACME directory URL (default: Let's Encrypt production)",
  },
  { key: 'acmeCa', flag: 'acme-ca', arg: '<file>', type: text(), help: "PEM roots to trust for the ACME directory's own TLS (a private or test CA)" },
  {
    key: 'acmeCache', flag: 'acme-cache', arg: '<dir>', type: text(), defaultText: '$XDG_STATE_HOME/hotproxy/acme or ~/.local/state/hotproxy/acme',
    help: 'ACME account key and certificates (mode 0700), reused across restarts',
  },
  { key: 'mode', flag: 'mode', arg: '<mode>', type: choice(['http', 'tcp']), default: 'http', help: 'proxy mode' },
  {
    key: 'engine', flag: 'engine', arg: '<engine>', type: choice(['raw', 'node']), default: 'raw',
    help: 'http mode data path: raw (net + llhttp) or node (Node http server and client)',
  },
  { key: 'backend', flag: 'backend', arg: '<kind>', type: choice(['unix', 'tcp', 'port-env']), default: 'unix', help: 'how backends get their socket' },
  { key: 'workers', flag: 'workers', short: 'w', arg: '<n>', type: count(MAX_PROCESSES), default: 1, help: 'backend instances per generation' },
  { key: 'proxyWorkers', flag: 'proxy-workers', arg: '<n>', type: count(MAX_PROCESSES), default: 1, help: 'proxy worker processes' },
  {
    key: 'deployTimeoutMs', flag: 'deploy-timeout', arg: '<duration>', type: duration(), default: 30_000,
    help: 'how long a new generation may take to become healthy',
  },
  {
    key: 'drainTimeoutMs', flag: 'drain-timeout', arg: '<duration>', type: duration(), default: 30_000,
    help: 'how long in-flight requests may take, and then the exit after SIGTERM',
  },
  {
    key: 'keepPreviousMs', flag: 'keep-previous', arg: '<duration>', type: duration({ zero: true }), default: 0,
    help: 'after a deploy, keep the previous generation running (unrouted) this long for an instant `hotproxy rollback`; 0 = off',
  },
  {
    key: 'upgradeTimeoutMs', flag: 'upgrade-timeout', arg: '<duration>', type: duration(), default: 30_000,
    help: 'how long new proxy workers may take to be ready in an upgrade',
  },
  {
    key: 'queueTimeoutMs', flag: 'queue-timeout', arg: '<duration>', type: duration(), default: 10_000,
    help: 'how long a request waits for a healthy backend before 503',
  },
  {
    key: 'headerTimeoutMs', flag: 'header-timeout', arg: '<duration>', type: duration({ maxMs: NODE_REQUEST_TIMEOUT_MS }), default: 30_000,
    help: 'how long a client may take to send request headers',
  },
  {
    // Longer than common client idle timeouts, so the client, not the proxy, closes idle
    // keep-alive connections: a proxy-side close races a client that is about to send.
    key: 'keepAliveTimeoutMs', flag: 'keepalive-timeout', arg: '<duration>', type: duration(), default: 65_000,
    help: 'idle time before the proxy closes a client connection',
  },
  {
    key: 'healthPath', flag: 'health-path', arg: '<path>', type: text(checkRequestPath), default: '/',
    help: 'http mode: GET this path; healthy = status < 500',
  },
  {
    key: 'healthIntervalMs', flag: 'health-interval', arg: '<duration>', type: duration(), default: 50,
    help: 'time between health checks during a deploy',
  },
  { key: 'healthRise', flag: 'health-rise', arg: '<n>', type: count(), default: 2, help: 'consecutive passing checks needed to be healthy again' },
  {
    key: 'healthTimeoutMs', flag: 'health-timeout', arg: '<duration>', type: duration(), default: 2_000,
    help: 'how long one health check may wait for the app (deploys and live checks)',
  },
  {
    key: 'liveIntervalMs', flag: 'live-interval', arg: '<duration>', type: duration({ zero: true }), default: 2_000,
    help: 'time between health checks of the serving instances; 0 = none',
  },
  {
    key: 'healthFall', flag: 'health-fall', arg: '<n>', type: count(), default: 3,
    help: 'consecutive failed checks that take a serving instance out of rotation',
  },
  {
    key: 'unhealthyRestartMs', flag: 'unhealthy-restart', arg: '<duration>', type: duration(), default: 30_000,
    help: 'an instance out of rotation this long is replaced',
  },
  {
    key: 'backendTimeoutMs', flag: 'backend-timeout', arg: '<duration>', type: duration(), default: 60_000,
    help: 'how long a backend may stay silent while a request is in flight: 504, or a cut once the answer began',
  },
  {
    key: 'health', flag: 'health', arg: '<check>', type: choice(['auto', 'notify']), default: 'auto',
    help: 'when a new instance is ready: auto = --health-cmd, else GET --health-path (http), else --ready-delay (tcp); notify = when it sends READY=1 on $NOTIFY_SOCKET',
  },
  {
    key: 'healthCmd', flag: 'health-cmd', arg: '<command>', type: text(),
    help: 'shell command; exit 0 = healthy ($HOTPROXY_BACKEND_ADDRESS is set)',
  },
  {
    key: 'readyDelayMs', flag: 'ready-delay', arg: '<duration>', type: duration({ zero: true }),
    defaultText: `tcp mode: ${showDuration(TCP_READY_DELAY_MS)}`, help: 'healthy = still alive after this long',
  },
  {
    key: 'runtimeDir', flag: 'runtime-dir', arg: '<dir>', type: text(), defaultText: '$XDG_RUNTIME_DIR or the temp dir',
    help: 'where the private runtime directory is created',
  },
  {
    // CIDR ranges are read in resolveOptions, next to trustList, which builds the BlockList.
    key: 'trustProxy', flag: 'trust-proxy', arg: '<cidr>', type: list(text()), default: [] as string[],
    help: 'keep X-Forwarded-* from these peers',
  },
  {
    key: 'accessLog', flag: 'access-log', arg: '<stdout|file>', type: text(),
    help: 'http mode: one JSON line per request, to stdout or appended to this file (reopened on SIGUSR1); tcp mode has none',
  },
  {
    key: 'control', flag: 'control', arg: '<path>', type: text(checkSocketPath), defaultText: 'control.sock in the runtime dir',
    help: 'control socket',
  },
  { key: 'pidFile', flag: 'pid-file', arg: '<path>', type: text(), help: 'write the master pid here once serving; removed at exit' },
  { key: 'statusFile', flag: 'status-file', arg: '<path>', type: text(), help: "Server::Starter's status file: <generation>:<pid> lines" },
  {
    key: 'metrics', flag: 'metrics', arg: '<addr>', type: adminAddress,
    help: 'admin listener, never public: /metrics (Prometheus), /ready, /live (e.g. 127.0.0.1:9090)',
  },
  { key: 'logLevel', flag: 'log-level', arg: '<level>', type: choice(LOG_LEVELS), default: 'info', help: 'log level' },
  {
    key: 'logFormat', flag: 'log-format', arg: '<format>', type: choice(['json', 'pretty', 'auto']), default: 'auto',
    help: 'log format; auto = pretty on a terminal',
  },
] as const satisfies readonly AnyOptionDef[];

type Row = (typeof OPTIONS)[number];
/** The options that have a fixed default, which resolveOptions fills in. */
export type Defaults = Pick<Options, Extract<Row, { default: unknown }>['key']>;

/** Not a setting but where more of them come from; it has a variable, not a config key. */
export const CONFIG_FLAG: FlagDoc = {
  flag: 'config', arg: '<file>',
  help: 'JSON file of settings: {"listen": ["8888"], "drain-timeout": "30s", "command": ["node", "app.js"]}',
};

// Node's http client throws on a request path with these (ERR_UNESCAPED_CHARACTERS), which
// would fail every health check, hence the deploy, long after start-up.
function checkRequestPath(flag: string, path: string): void {
  if (!path.startsWith('/')) throw new UsageError(`${flag} must start with /`);
  if (/[^\u0021-\u00ff]/.test(path)) throw new UsageError(`${flag} must be a request path without spaces or control characters`);
}

/** HOTPROXY_DRAIN_TIMEOUT for --drain-timeout. */
export function envName(flag: string): string {
  return `HOTPROXY_${flag.toUpperCase().replaceAll('-', '_')}`;
}

/** drainTimeout for drain-timeout: the config file takes either spelling. */
export function camelName(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function optionByConfigKey(key: string): AnyOptionDef | undefined {
  return (OPTIONS as readonly AnyOptionDef[]).find((d) => d.flag === key || camelName(d.flag) === key);
}

/** The default as --help and the README say it, if there is one to say. */
export function shownDefault(d: AnyOptionDef): string | undefined {
  if (d.defaultText !== undefined) return d.defaultText;
  if (d.default === undefined) return undefined;
  const shown = (d.type as OptionType<unknown>).show(d.default);
  return shown === '' ? undefined : shown;
}

/** A flag's --help line: its help, then its choices, default and variable. */
export function helpText(doc: FlagDoc): string {
  const d = OPTIONS.find((o) => o.flag === doc.flag);
  const shown = d && shownDefault(d);
  const notes = [
    d?.type.list && 'repeatable, or comma-separated',
    d?.type.choices && `one of: ${d.type.choices.join(', ')}`,
    shown !== undefined && `default: ${shown}`,
    `env: ${envName(doc.flag)}`,
  ].filter(Boolean);
  return `${doc.help} (${notes.join('; ')})`;
}

/** A value from texts (the last wins, unless the option is a list) then checked, naming the flag. */
export function readValue(d: AnyOptionDef, texts: string[]): unknown {
  const flag = `--${d.flag}`;
  const type = d.type as OptionType<unknown>;
  const value = type.list ? texts.flatMap((t) => type.parse(flag, t) as unknown[]) : type.parse(flag, texts[texts.length - 1]!);
  type.check(flag, value);
  return value;
}

/** Every fixed default, by Options key (lists fresh each time: callers may keep them). */
export function tableDefaults(): Defaults {
  const out: Record<string, unknown> = {};
  for (const d of OPTIONS as readonly AnyOptionDef[]) if (d.default !== undefined) out[d.key] = Array.isArray(d.default) ? [...d.default] : d.default;
  return out as Defaults;
}
