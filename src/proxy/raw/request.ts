// One client request of the raw engine and its progress. Instances are recycled through one
// pool for the worker (takeReq, giveBack): a busy connection allocates none per request, and an
// idle one holds none (with what its last request left in it, a Req is most of the JS heap an
// idle keep-alive connection would otherwise keep).
import { STATUS_CODES } from 'node:http';
import type { Target } from '../../ipc.js';
import type { AccessEntry, Cut } from '../access-line.js';
import type { RequestOut } from '../headers.js';
import type { UpConn } from './upstream.js';

export class Req implements RequestOut, AccessEntry {
  method = '';
  /** The request target as the client sent it. */
  url = '';
  /** The head to send upstream (request line, headers, empty line). */
  head = '';
  /** REQ_* flags from requestHead(). */
  flags = 0;
  /** The body's Content-Length (-1: none, or chunked). */
  length = -1;
  keepAliveHeader: string | undefined = undefined;
  requestId = '';
  userAgent: string | undefined = undefined;
  /** The client's address. */
  client = '';
  isHead = false;
  http10 = false;
  /** The client connection stays open after this exchange. */
  persist = true;
  upgrade = false;
  /** May be sent again after a connection error (idempotent, no body). */
  retryable = false;
  /** During a canary: this client is on the canary's side, and is told so by this Set-Cookie. */
  toCanary = false;
  setCookie: string | undefined = undefined;
  /** Bytes the client sent after an upgrade request's head. */
  rest: Buffer | null = null;
  /** The whole request was parsed. */
  done = false;
  /** Body chunks parsed before an upstream connection was there to take them. */
  body: Buffer[] | null = null;
  /** The trailer fields of a chunked body. */
  trailers: string[] | null = null;
  /** Counted in flight for this target's generation while set. */
  target: Target | null = null;
  attempt = 1;
  up: UpConn | null = null;
  /** A response byte went to the client. */
  started = false;
  /** The response is sent chunked. */
  chunked = false;
  /** The response is complete. */
  responded = false;
  /** For /metrics: when the exchange started, and the generation that was given it (0: none). */
  t0 = 0n;
  gen = 0;
  /** For the access log (the status for /metrics too): see AccessEntry. */
  status = 0;
  bytes = 0;
  ttfb = 0n;
  pid = 0;
  tries = 0;
  cut: Cut | undefined = undefined;
  /** Its access-log line was written. */
  logged = false;

  reset(): void {
    this.method = '';
    this.url = '';
    this.head = '';
    this.keepAliveHeader = undefined;
    this.requestId = '';
    this.userAgent = undefined;
    this.client = '';
    this.toCanary = false;
    this.setCookie = undefined;
    this.rest = null;
    this.done = false;
    this.body = null;
    this.trailers = null;
    this.target = null;
    this.attempt = 1;
    this.up = null;
    this.started = false;
    this.chunked = false;
    this.responded = false;
    this.t0 = 0n;
    this.gen = 0;
    this.status = 0;
    this.bytes = 0;
    this.ttfb = 0n;
    this.pid = 0;
    this.tries = 0;
    this.cut = undefined;
    this.logged = false;
  }
}

/** Enough for the requests in progress at once on a busy worker; beyond it they are left to the collector. */
const SPARE_REQS = 256;
const spareReqs: Req[] = [];

export function takeReq(): Req {
  return spareReqs.pop() ?? new Req();
}

/** `req`'s exchange is over and nothing refers to it any more. */
export function giveBack(req: Req): void {
  req.reset();
  if (spareReqs.length < SPARE_REQS) spareReqs.push(req);
}

/** The short answer Node's http server gives to unparseable or too slow input; then it closes. */
export function rejection(status: number): string {
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nConnection: close\r\n\r\n`;
}

/** A complete response from the proxy itself (502/503/504/417). */
export function proxyResponse(status: number, body: string, close: boolean, withBody: boolean): string {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`;
  if (close) head += 'connection: close\r\n';
  return withBody ? `${head}\r\n${body}` : `${head}\r\n`;
}
