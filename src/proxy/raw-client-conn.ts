// A client connection of the raw engine: requests parsed with llhttp, answered one at a time
// and in order (pipelined ones wait in a queue while the socket is paused).
import type net from 'node:net';
import type { Target } from '../ipc.js';
import type { RawEngine } from './raw-engine.js';
import { REQ_BODY, REQ_CHUNKED, REQ_EXPECT_CONTINUE, REQ_EXPECT_OTHER, RES_LENGTH, requestHead, responseHead, stripV4Mapped, type HeadOut, type Peer } from './raw-headers.js';
import {
  HTTPParser, closeParser, kOnBody, kOnHeaders, kOnHeadersComplete, kOnMessageBegin, kOnMessageComplete,
  methods, newParser, statusForParseError, type NativeParser, type ParseError,
} from './raw-parser.js';
import { Req, proxyResponse, rejection } from './raw-request.js';
import type { Exchange } from './raw-upstream.js';
import { bodyFor, isRefused, isRetryable, statusFor } from './status.js';

const MAX_ATTEMPTS = 3;
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
// Reasons to stop reading the client (the socket reads while none is set).
const HOLD_QUEUE = 1;
const HOLD_UPSTREAM = 2;
const HOLD_ROUTE = 4;
const HOLD_DONE = 8;

export class ClientConn implements Exchange {
  private parser: NativeParser;
  private peer: Peer;
  private out: HeadOut = { flags: 0, keepAliveHeader: undefined };
  /** The parser has seen a byte of a message it has not completed. */
  inMessage = false;
  /** ... and that message's head is not complete yet. */
  private inHead = false;
  private headTicks = 0;
  private idleTicks = 0;
  moving = false;
  private hdrs: string[] | null = null;
  private urlPart = '';
  /** The exchange in progress, the request being parsed, and pipelined ones waiting. */
  private cur: Req | null = null;
  private parsing: Req | null = null;
  private queue: Req[] = [];
  private spare: Req | null = null;
  private upgrading: Req | null = null;
  private holds = 0;
  private ended = false;
  private closed = false;
  /** A status to answer (then close) once the exchanges before it are done. */
  private pendingError = 0;

  constructor(private engine: RawEngine, readonly socket: net.Socket) {
    socket.setNoDelay(true);
    const ip = socket.remoteAddress ?? '';
    this.peer = { ip: stripV4Mapped(ip), trusted: engine.isTrusted(ip) };
    const p = (this.parser = newParser(HTTPParser.REQUEST));
    p[kOnMessageBegin] = this.onMessageBegin;
    p[kOnHeaders] = this.onHeaders;
    p[kOnHeadersComplete] = this.onHeadersComplete;
    p[kOnBody] = this.onBody;
    p[kOnMessageComplete] = this.onMessageComplete;
    socket.on('data', this.onData);
    socket.on('drain', this.onDrain);
    socket.on('end', this.onEnd);
    socket.on('error', noop);
    socket.on('close', this.onClose);
  }

  /** No exchange, nothing queued, no byte of a next request read: the connection may move. */
  atBoundary(): boolean {
    return this.cur === null && this.queue.length === 0 && !this.inMessage && this.holds === 0 && this.pendingError === 0
      && !this.ended && !this.closed && this.socket.readableLength === 0;
  }

  get idle(): boolean {
    return this.cur === null && !this.inMessage;
  }

  /** Called by the engine's sweep: header timeout (408) and idle keep-alive timeout. */
  tick(headLimit: number, idleLimit: number): void {
    if (this.moving || this.closed) return;
    if (this.inHead) {
      if (++this.headTicks >= headLimit) this.reject(408);
    } else if (this.cur === null && !this.inMessage && ++this.idleTicks >= idleLimit) {
      this.socket.destroy();
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData = (d: Buffer): void => {
    this.idleTicks = 0;
    const r = this.parser.execute(d);
    if (typeof r !== 'number') { this.parseError(r); return; }
    const u = this.upgrading;
    if (u === null) return;
    this.upgrading = null;
    this.hold(HOLD_DONE);
    if (r < d.length) u.rest = d.subarray(r);
    if (u.method === 'CONNECT') { this.reject(400); return; }
    if (this.cur === null) this.startUpgrade(u);
    else this.queue.push(u);
  };

  private onMessageBegin = (): void => {
    this.inMessage = true;
    this.inHead = true;
    this.headTicks = 0;
  };

  private onHeaders = (headers: string[], url: string): void => {
    this.hdrs = this.hdrs === null ? headers : this.hdrs.concat(headers);
    this.urlPart += url;
  };

  private onHeadersComplete = (maj: number, min: number, headers: string[] | undefined, method: number, url: string | undefined,
    _s: unknown, _m: unknown, upgrade: boolean, keepAlive: boolean): number => {
    if (headers === undefined) { headers = this.hdrs ?? []; url = this.urlPart; }
    this.hdrs = null;
    this.urlPart = '';
    this.inHead = false;
    const req = this.spare ?? new Req();
    this.spare = null;
    const m = methods[method]!;
    req.method = m;
    req.isHead = m === 'HEAD';
    req.http10 = maj === 0 || (maj === 1 && min === 0);
    req.persist = keepAlive;
    req.upgrade = upgrade;
    req.head = requestHead(req, m, url!, headers, this.peer, upgrade);
    req.retryable = (req.flags & REQ_BODY) === 0 && IDEMPOTENT.has(m);
    this.parsing = req;
    if (upgrade) { this.upgrading = req; return 0; }
    if (this.cur === null) this.start(req);
    else { this.queue.push(req); this.hold(HOLD_QUEUE); }
    return 0;
  };

  private onBody = (chunk: Buffer): void => {
    const req = this.parsing;
    if (req === null || req.responded) return;
    if (req === this.cur && req.up !== null) this.sendBody(req.up, chunk, req.flags & REQ_CHUNKED);
    else (req.body ??= []).push(chunk);
  };

  private onMessageComplete = (): void => {
    this.inMessage = false;
    const req = this.parsing;
    this.parsing = null;
    if (req === null) return;
    req.done = true;
    if (!req.persist) this.hold(HOLD_DONE);
    if (req !== this.cur) return;
    const up = req.up;
    if (up !== null) {
      if (req.flags & REQ_CHUNKED) up.write('0\r\n\r\n', 'latin1');
      up.requestSent = true;
    }
    if (req.responded) this.next();
  };

  private start(req: Req): void {
    this.cur = req;
    if (req.flags & REQ_EXPECT_OTHER) { this.respond(req, 417, 'Expectation Failed\n'); return; }
    if (req.flags & REQ_EXPECT_CONTINUE && !req.http10) this.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
    this.route(req);
  }

  private route(req: Req): void {
    const t = this.engine.router.pick();
    if (t !== undefined) { this.forward(req, t); return; }
    this.hold(HOLD_ROUTE);
    this.engine.router.wait(this.engine.cfg.queueTimeoutMs).then(
      (target) => { this.release(HOLD_ROUTE); if (this.cur === req && !this.closed) this.forward(req, target); },
      (err: Error) => { this.release(HOLD_ROUTE); if (this.cur === req && !this.closed) this.fail(req, err); },
    );
  }

  private forward(req: Req, target: Target): void {
    this.engine.inflight.inc(target.gen);
    req.target = target;
    const up = this.engine.pool(target).acquire(this);
    req.up = up;
    up.write(req.head, 'latin1');
    const chunked = req.flags & REQ_CHUNKED;
    if (req.body !== null) {
      for (const b of req.body) this.sendBody(up, b, chunked);
      req.body = null;
    }
    if (req.done) {
      if (chunked) up.write('0\r\n\r\n', 'latin1');
      up.requestSent = true;
    }
  }

  private sendBody(up: { write(d: string | Buffer, e?: BufferEncoding): boolean }, chunk: Buffer, chunked: number): void {
    if (chunked) up.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
    let ok = up.write(chunk);
    if (chunked) ok = up.write('\r\n', 'latin1');
    if (!ok) this.hold(HOLD_UPSTREAM);
  }

  onResponseHead(status: number, msg: string, headers: string[], keepAlive: boolean): number {
    const req = this.cur!;
    const out = this.out;
    let head = responseHead(out, status, msg, headers);
    if (keepAlive) req.up!.setKeepAlive(out.keepAliveHeader);
    req.started = true;
    let persist = req.persist && !this.engine.stopping;
    if (!(out.flags & RES_LENGTH) && !req.isHead && status !== 204 && status !== 304) {
      if (req.http10) persist = false; // close-delimited
      else { head += 'transfer-encoding: chunked\r\n'; req.chunked = true; }
    }
    if (!persist) head += 'connection: close\r\n';
    else if (req.http10) head += 'connection: keep-alive\r\n';
    req.persist = persist;
    this.socket.write(head + '\r\n', 'latin1');
    return req.isHead ? 1 : 0;
  }

  onResponseBody(chunk: Buffer): boolean {
    const s = this.socket;
    if (!this.cur!.chunked) return s.write(chunk);
    s.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
    s.write(chunk);
    return s.write('\r\n', 'latin1');
  }

  onResponseEnd(): void {
    const req = this.cur!;
    if (req.chunked) this.socket.write('0\r\n\r\n', 'latin1');
    req.up = null;
    this.endExchange(req);
  }

  onUpstreamError(err: Error): void {
    const req = this.cur;
    if (req === null) return;
    req.up = null;
    const t = req.target!;
    this.engine.inflight.dec(t.gen);
    req.target = null;
    if (this.closed) return;
    if (!req.started && req.retryable && req.attempt < MAX_ATTEMPTS && isRetryable(err)) {
      if (isRefused(err)) this.engine.router.markDown(t);
      req.attempt++;
      this.route(req);
      return;
    }
    if (req.started) { this.socket.destroy(); return; }
    this.fail(req, err, t);
  }

  onUpstreamDrain(): void {
    this.release(HOLD_UPSTREAM);
  }

  private onDrain = (): void => {
    this.cur?.up?.resume();
  };

  private fail(req: Req, err: Error, target?: Target): void {
    const status = statusFor(err);
    this.engine.log.warn({ status, err: err.message, code: (err as { code?: string }).code, target: target?.id }, 'Proxy error');
    this.respond(req, status, bodyFor(status));
  }

  /** The proxy's own answer to `req`. */
  private respond(req: Req, status: number, body: string): void {
    const persist = req.persist && req.done && !this.engine.stopping;
    this.socket.write(proxyResponse(status, body, !persist, !req.isHead), 'latin1');
    req.persist = persist;
    req.started = true;
    this.endExchange(req);
  }

  private endExchange(req: Req): void {
    if (req.target !== null) { this.engine.inflight.dec(req.target.gen); req.target = null; }
    req.responded = true;
    this.release(HOLD_UPSTREAM);
    if (!req.persist) { this.hold(HOLD_DONE); this.socket.destroySoon(); return; }
    // The rest of an unfinished request body is read and dropped before the next request.
    if (req.done) this.next();
  }

  private next(): void {
    const req = this.cur!;
    this.cur = null;
    req.reset();
    this.spare = req;
    this.idleTicks = 0;
    this.release(HOLD_UPSTREAM);
    const n = this.queue.shift();
    if (n !== undefined) {
      if (this.queue.length === 0) this.release(HOLD_QUEUE);
      if (n.upgrade) this.startUpgrade(n);
      else this.start(n);
      return;
    }
    if (this.pendingError !== 0) { this.rejectNow(this.pendingError); return; }
    if (this.ended) { this.socket.destroySoon(); return; }
    if (this.engine.handingOff) this.engine.offer(this);
  }

  /** This connection becomes a tunnel: the engine connects it upstream and joins the two. */
  private startUpgrade(req: Req): void {
    this.cur = req;
    const s = this.socket;
    s.pause();
    s.off('data', this.onData);
    s.off('drain', this.onDrain);
    s.off('end', this.onEnd);
    s.off('close', this.onClose);
    this.closed = true;
    this.engine.detach(this);
    closeParser(this.parser);
    this.engine.upgrade(s, req.head, req.rest, 1);
  }

  private parseError(err: ParseError): void {
    this.hold(HOLD_DONE);
    if (err.code === 'HPE_CLOSED_CONNECTION') return; // bytes after a request that closes the connection
    const status = statusForParseError(err.code);
    const p = this.parsing;
    this.parsing = null;
    if (p !== null && p === this.cur) {
      // The body being forwarded is broken: the upstream request cannot be completed.
      if (p.up !== null) { p.up.abort(); p.up = null; }
      if (p.started) { this.socket.destroy(); return; }
      if (p.target !== null) { this.engine.inflight.dec(p.target.gen); p.target = null; }
      this.cur = null;
      this.rejectNow(status);
      return;
    }
    if (p !== null) this.queue.pop();
    this.reject(status);
  }

  /** Answer `status` and close, after the exchanges before it. */
  private reject(status: number): void {
    this.hold(HOLD_DONE);
    if (this.cur === null) this.rejectNow(status);
    else this.pendingError = status;
  }

  private rejectNow(status: number): void {
    this.socket.write(rejection(status), 'latin1');
    this.socket.destroySoon();
  }

  private onEnd = (): void => {
    this.ended = true;
    const p = this.parsing;
    if (p !== null && p === this.cur && !p.done) { this.socket.destroy(); return; } // a cut request
    if (p !== null) { this.queue.pop(); this.parsing = null; }
    if (this.cur === null) this.socket.destroy();
  };

  private onClose = (): void => {
    this.closed = true;
    this.engine.detach(this);
    const req = this.cur;
    if (req !== null) {
      if (req.up !== null) { req.up.abort(); req.up = null; }
      if (req.target !== null) { this.engine.inflight.dec(req.target.gen); req.target = null; }
    }
    this.queue.length = 0;
    closeParser(this.parser);
  };

  private hold(bit: number): void {
    if (this.holds === 0) this.socket.pause();
    this.holds |= bit;
  }

  private release(bit: number): void {
    if ((this.holds & bit) === 0) return;
    this.holds &= ~bit;
    if (this.holds === 0 && !this.closed) this.socket.resume();
  }
}

function noop(): void {}
