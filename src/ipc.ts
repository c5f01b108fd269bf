// Messages between the master and its proxy workers (Node's IPC channel, JSON).
// The master is the only one that decides routes; workers report what only they can see:
// when a generation has no requests or connections left on them.
import type { Address } from './address.js';
import type { LogOptions } from './log.js';
import type { Metrics } from './metrics/traffic.js';

export type Mode = 'http' | 'tcp';
/** The http-mode data path: `node` = Node's http server and client (public APIs only), `raw` = net + llhttp. */
export type EngineKind = 'raw' | 'node';

/** One backend instance a worker may send traffic to. */
export interface Target {
  id: string;
  gen: number;
  /** The backend's pid, for the access log. */
  pid: number;
  address: Address;
}

export interface WorkerConfig {
  index: number;
  mode: Mode;
  engine: EngineKind;
  /** Inherited public listener fds, in --listen order. */
  fds: number[];
  /** Inherited --listen-tls fds: TLS is terminated here (h2 and http/1.1 by ALPN). */
  tlsFds: number[];
  /** Plain-HTTP requests are answered with a redirect to https:// (ACME challenges excepted). */
  redirectHttps: boolean;
  queueTimeoutMs: number;
  headerTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** How long a backend may stay silent while a request is in flight (http mode). */
  backendTimeoutMs: number;
  trustProxy: string[];
  /** --access-log: `stdout` or an absolute path (http mode); none: no access log. */
  accessLog?: string;
  log: LogOptions;
}

/** A certificate (PEM, the chain may follow) and its private key (PEM), checked by the master. */
export interface CertPair {
  cert: string;
  key: string;
}

/** ACME HTTP-01: the key authorization to answer at /.well-known/acme-challenge/<token>. */
export type AcmeTokens = Record<string, string>;

export interface Route {
  seq: number;
  gen: number | null;
  targets: Target[];
  /** `hotproxy reload --canary`: this share of clients goes to a second generation. */
  canary?: Canary;
}

export interface Canary {
  gen: number;
  targets: Target[];
  /** 0–100. */
  percent: number;
}

export type ToWorker =
  /** `paused`: a pause is on; hold new requests from the start. */
  | { t: 'config'; config: WorkerConfig; route: Route; paused: boolean; certs: CertPair[]; tokens: AcmeTokens }
  /** New certificates: new TLS handshakes use them; open sessions keep theirs. */
  | { t: 'certs'; pairs: CertPair[] }
  /** The ACME HTTP-01 challenges open now (all of them). */
  | { t: 'acme'; seq: number; tokens: AcmeTokens }
  | { t: 'route'; route: Route }
  /** Report `drained` once `gen` has nothing in flight on this worker. */
  | { t: 'drain'; gen: number }
  /** The drain deadline passed: cut whatever `gen` still has open. */
  | { t: 'cut'; gen: number }
  | { t: 'stop'; timeoutMs: number }
  | { t: 'stats'; seq: number }
  /** Replaced by a new worker: stop accepting, hand open connections over, then exit. */
  | { t: 'retire'; timeoutMs: number }
  /** An open client connection handed over from a retiring worker (the handle rides along). */
  | { t: 'conn' }
  /** Hold new requests (do not send them upstream); report `idle` once nothing is in flight. */
  | { t: 'pause'; seq: number }
  /** Release the held requests in order, or (`expired`: past --max-pause) answer them 503. */
  | { t: 'resume'; seq: number; expired: boolean }
  /** SIGUSR1 to the master (logrotate): open the access log file again by its name. */
  | { t: 'reopen' };

export type FromWorker =
  | { t: 'ready' }
  | { t: 'routed'; seq: number }
  /** The ACME tokens of this `seq` are answered from now on. */
  | { t: 'tokens'; seq: number }
  | { t: 'drained'; gen: number }
  /** A connection handed to the master for a new worker (the handle rides along). */
  | { t: 'conn' }
  | { t: 'stats'; seq: number; stats: WorkerStats }
  /** A retiring worker's last traffic totals, sent just before it exits. */
  | { t: 'final'; traffic: Metrics }
  /** An instance refused a connection or stayed silent past --backend-timeout (a failed check). */
  | { t: 'suspect'; id: string; gen: number; reason: 'refused' | 'timeout' }
  /** Paused, and nothing is in flight on this worker. */
  | { t: 'idle'; seq: number }
  /** Resumed: `held` requests were released (or answered 503). */
  | { t: 'resumed'; seq: number; held: number };

/** What only a worker can see, for `hotproxy status`. */
export interface WorkerStats {
  /** Requests (http) or connections (tcp, WebSocket) in flight, by generation. */
  inflight: Record<number, number>;
  /** Open client connections. */
  connections: number;
  /** Of those, idle keep-alive ones held as bare handles (the raw engine's). */
  idle: number;
  /** Requests (tcp: connections) held by a pause. */
  held: number;
  /** Request totals since the worker started, for /metrics. */
  traffic: Metrics;
}
