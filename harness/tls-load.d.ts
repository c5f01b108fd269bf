import type { ClientHttp2Session } from 'node:http2';
import type { LoadResult } from './load.js';

export { firstAnswer } from './load.js';

/** One kind of request a lane sends in turn: a body of `body` bytes (null: none), an answer of `size` bytes if set. */
export interface Kind {
  name: string;
  method: string;
  path: string;
  body: number | null;
  size?: number;
}

/** GET /, POST /echo of 4 KiB, GET of 1 MiB, POST /echo of 64 KiB, POST /echo with an empty body. */
export declare const KINDS: Kind[];

export interface TlsLoadResult extends LoadResult {
  /** Answers per kind of request. */
  byKind: Map<string, number>;
}

interface Counted {
  readonly result: TlsLoadResult;
  /** pid -> performance.now() of its first answer. */
  readonly firstSeen: Map<number, number>;
  /** Responses served so far by a backend pid. */
  servedBy(pid: number): number;
  stop(): Promise<TlsLoadResult>;
}

/** HTTPS keep-alive clients (ALPN http/1.1) that never retry; each answer is checked against its request. */
export declare class TlsLoad implements Counted {
  constructor(url: string, connections?: number, opts?: { ca?: string[]; timeoutMs?: number; kinds?: Kind[] });
  readonly result: TlsLoadResult;
  readonly firstSeen: Map<number, number>;
  /** Connections opened so far. */
  readonly connections: number;
  /** Answers that said Connection: close. */
  readonly closes: number;
  /** Lanes whose last answer said Connection: close, so they stopped before opening another connection. */
  readonly lastClosed: number;
  /** ALPN protocol -> connections that chose it ('false': none). */
  readonly alpn: Map<string, number>;
  servedBy(pid: number): number;
  stop(): Promise<TlsLoadResult>;
}

/**
 * HTTP/2 clients (ALPN h2) that never retry, `streams` requests at a time per session; a session
 * that got GOAWAY takes no new streams, new ones go on a new session.
 */
export declare class H2Load implements Counted {
  constructor(url: string, clients?: number, streams?: number, opts?: { ca?: string[]; timeoutMs?: number; kinds?: Kind[] });
  readonly result: TlsLoadResult;
  readonly firstSeen: Map<number, number>;
  /** Sessions opened so far, and how many of them agreed on h2 by ALPN. */
  readonly sessions: number;
  readonly alpnH2: number;
  readonly alpn: Map<string, number>;
  /** GOAWAY frames received, by error code. */
  readonly goaways: Map<number, number>;
  /** The last stream ids of the first 100 GOAWAYs. */
  readonly lastStreamIds: number[];
  /**
   * Requests a GOAWAY declared unprocessed (REFUSED_STREAM, no response head, id above the
   * GOAWAY's last stream id) or Node never sent, sent again on a new session (RFC 9113 §8.7.1).
   */
  readonly unprocessed: number;
  /** The first 20 session errors. */
  readonly sessionErrors: string[];
  /** Sessions not closed yet. */
  readonly all: Set<ClientHttp2Session>;
  servedBy(pid: number): number;
  stop(): Promise<TlsLoadResult>;
}
