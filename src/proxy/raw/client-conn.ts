// A client connection of the raw engine, the exchange half: each parsed request (in order,
// one at a time; raw-client-input.ts reads and queues them) is routed, forwarded upstream and
// answered, or answered by the proxy itself when that fails.
import { traffic } from '../../metrics/traffic.js';
import type net from 'node:net';
import type { Target } from '../../ipc.js';
import { REQ_CHUNKED, REQ_EXPECT_OTHER, RES_LENGTH, type HeadOut } from '../headers.js';
import { CONN, ClientInput, HOLD_DONE, HOLD_ROUTE, HOLD_UPSTREAM, type ConnSocket } from './client-input.js';
import type { RawEngine } from './engine.js';
import { informationalHead, lastChunk, responseHead } from './heads.js';
import { proxyResponse, type Req } from './request.js';
import { PUMP_BODY, type Exchange, type UpConn } from './upstream.js';
import { PUMP_MIN_BYTES } from './body-pump.js';
import { PENDING, WROTE, canTap, writeNow } from '../../internals/index.js';
import { cookiesInHead, place } from '../canary.js';
import { afterFailure, bodyFor, statusFor } from '../failure.js';
import type { Cut } from '../access-line.js';

interface Writable {
  write(d: string | Buffer, e?: BufferEncoding): boolean;
}

/** What responseHead() found in a head, read right after it: one for the worker, not one per connection. */
const out: HeadOut = { flags: 0, keepAliveHeader: undefined };

export class ClientConn extends ClientInput implements Exchange {
  /** Inside a batch (see Exchange.beginBatch): what is to be written at its end. */
  private batching = false;
  private pending = '';
  private closeAtEnd = false;

  constructor(engine: RawEngine, socket: net.Socket, fresh: boolean) {
    super(engine, socket, fresh);
    socket.setNoDelay(true);
    socket.on('drain', ClientConn.socketDrain);
  }

  protected start(req: Req): void {
    this.cur = req;
    req.t0 = process.hrtime.bigint();
    if (req.flags & REQ_EXPECT_OTHER) { this.respond(req, 417, 'Expectation Failed\n'); return; }
    const edge = this.engine.edge;
    const key = edge === undefined ? undefined : edge.challenge(req.url);
    if (key !== undefined) { this.respond(req, 200, key); return; }
    this.route(req);
  }

  private route(req: Req): void {
    const router = this.engine.router;
    // A canary runs: which side this client is on (by its cookie, else its address).
    if (router.canary !== undefined) {
      const p = place(router.canary, cookiesInHead(req.head), this.socket.remoteAddress);
      req.toCanary = p.toCanary;
      req.setCookie = p.setCookie;
    }
    const t = router.pick(req.toCanary);
    if (t !== undefined) { this.forward(req, t); return; }
    this.hold(HOLD_ROUTE);
    router.wait(this.engine.cfg.queueTimeoutMs, req.toCanary).then(
      (target) => { this.release(HOLD_ROUTE); if (this.cur === req && !this.closed) this.forward(req, target); },
      (err: Error) => { this.release(HOLD_ROUTE); if (this.cur === req && !this.closed) this.fail(req, err); },
    );
  }

  private forward(req: Req, target: Target): void {
    this.engine.inflight.inc(target.gen);
    req.target = target;
    req.gen = target.gen;
    req.pid = target.pid;
    req.tries++;
    const up = this.engine.pool(target).acquire(this);
    req.up = up;
    up.write(req.head, 'latin1');
    const chunked = req.flags & REQ_CHUNKED;
    if (req.body !== null) {
      for (const b of req.body) this.sendBody(up, b, chunked);
      req.body = null;
    }
    if (req.done) {
      if (chunked) up.write(lastChunk(req.trailers), 'latin1');
      up.requestSent = true;
    }
  }

  protected uploadTarget(req: Req): UpConn | null {
    const up = req.up;
    return up !== null && up.connected && canTap(this.socket, up.socket) ? up : null;
  }

  protected requestBody(req: Req, chunk: Buffer): void {
    this.sendBody(req.up!, chunk, req.flags & REQ_CHUNKED);
  }

  private sendBody(up: Writable, chunk: Buffer, chunked: number): void {
    if (chunked) up.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
    let ok = up.write(chunk);
    if (chunked) ok = up.write('\r\n', 'latin1');
    if (!ok) this.hold(HOLD_UPSTREAM);
  }

  protected requestEnd(req: Req): void {
    const up = req.up;
    if (up !== null) {
      if (req.flags & REQ_CHUNKED) up.write(lastChunk(req.trailers), 'latin1');
      up.requestSent = true;
    }
    if (req.responded) this.next();
  }

  onResponseHead(status: number, msg: string, headers: string[], keepAlive: boolean): number {
    const req = this.cur!;
    req.status = status;
    let head = responseHead(out, status, msg, headers);
    if (keepAlive) req.up!.setKeepAlive(out.keepAliveHeader);
    req.started = true;
    let persist = req.persist && this.mayStayOpen();
    if (!(out.flags & RES_LENGTH) && !req.isHead && status !== 204 && status !== 304) {
      if (req.http10) persist = false; // close-delimited
      else { head += 'transfer-encoding: chunked\r\n'; req.chunked = true; }
    }
    if (!persist) head += 'connection: close\r\n';
    else if (req.http10) head += 'connection: keep-alive\r\n';
    if (req.setCookie !== undefined) head += `set-cookie: ${req.setCookie}\r\n`;
    req.persist = persist;
    this.send(head + '\r\n');
    if (req.isHead) return 1;
    return this.takesBody(req, out, status) ? PUMP_BODY : 0;
  }

  /**
   * Whether the parser stops after the head and the body goes another way: by the pump
   * (body-pump.ts) when it is big or chunked (the client gets it chunked as well) between two
   * plain TCP sockets, else counted by the upstream connection when it has a Content-Length.
   */
  private takesBody(req: Req, out: HeadOut, status: number): boolean {
    if (status === 204 || status === 304) return false;
    const up = req.up!;
    let length: number;
    if (out.flags & RES_LENGTH) {
      length = out.length!;
      if (length <= 0) return false;
    } else if (req.chunked && out.chunked === true) length = -1;
    else return false;
    if ((length === -1 || length >= PUMP_MIN_BYTES) && canTap(up.socket, this.socket)) up.pumpBody(length);
    else if (length > 0) up.countBody(length);
    else return false;
    return true;
  }

  onFirstByte(): void {
    if (this.engine.accessLog !== null) this.cur!.ttfb = process.hrtime.bigint();
  }

  onInformational(status: number, msg: string, headers: string[]): void {
    // 101 only ever answers a tunnel's handshake, which is not parsed here.
    if (this.cur!.http10 || status === 101) return;
    this.send(informationalHead(status, msg, headers));
  }

  onResponseBody(text: string): void {
    const req = this.cur!;
    req.bytes += text.length;
    if (!req.chunked) this.send(text);
    else this.send(`${text.length.toString(16)}\r\n${text}\r\n`);
  }

  beginBatch(): void {
    this.batching = true;
  }

  endBatch(): boolean {
    this.batching = false;
    const text = this.pending;
    this.pending = '';
    const ok = text === '' || this.write(text);
    if (this.closeAtEnd) { this.closeAtEnd = false; this.socket.destroySoon(); }
    // The exchange ended inside the batch, when the offer had to wait (atBoundary); a write
    // that did not complete offers from its completion (onDrain).
    else if (ok && this.cur === null && this.engine.handingOff) this.engine.offer(this);
    return ok;
  }

  protected override letGo(): void {
    this.socket.off('drain', ClientConn.socketDrain);
    super.letGo();
  }

  /** What a batch holds is not written yet: a connection moved now would lose it. */
  override atBoundary(): boolean {
    return !this.batching && super.atBoundary();
  }

  protected send(text: string): void {
    if (this.batching) this.pending += text;
    else this.write(text);
  }

  protected closeAfterWrites(): void {
    if (this.batching) this.closeAtEnd = true;
    else this.socket.destroySoon();
  }

  /** false: the client is not keeping up (its 'drain', or the write's completion, says when it is). */
  private write(text: string): boolean {
    const s = this.socket;
    if (s.destroyed) return true;
    const r = writeNow(s, text, this.written);
    if (r === WROTE) return true;
    if (r === PENDING) { this.handleWrites++; return false; }
    return s.write(text, 'latin1');
  }

  private written = (status: number): void => {
    this.handleWrites--;
    if (status < 0) { this.socket.destroy(); return; }
    if (this.handleWrites === 0) this.onDrain();
  };

  onResponseEnd(trailers: string[] | null, pumped = 0): void {
    const req = this.cur!;
    req.bytes += pumped;
    if (req.chunked) this.send(lastChunk(trailers));
    req.up = null;
    this.stopUpload();
    traffic.record(req.gen, req.status, req.t0);
    this.logLine(req, undefined);
    this.endExchange(req);
  }

  onUpstreamError(err: Error): void {
    const req = this.cur;
    if (req === null) return;
    req.up = null;
    this.stopUpload();
    const t = req.target!;
    this.engine.inflight.dec(t.gen);
    req.target = null;
    if (this.closed) return;
    const again = afterFailure(this.engine.router, t, err, req.attempt, !req.started && req.retryable);
    if (again !== undefined) {
      req.attempt++;
      req.ttfb = 0n;
      if (again === 'route') this.route(req);
      else this.forward(req, again);
      return;
    }
    // Headers went out already: only a cut tells the client the body is incomplete.
    if (req.started) { this.logLine(req, 'backend'); this.socket.destroy(); return; }
    this.fail(req, err, t);
  }

  resendable(): boolean {
    const req = this.cur;
    return req !== null && !req.started && req.retryable;
  }

  onUpstreamDrain(): void {
    this.release(HOLD_UPSTREAM);
  }

  private static socketDrain(this: ConnSocket): void {
    (this[CONN] as ClientConn).onDrain();
  }

  private onDrain(): void {
    this.cur?.up?.resume();
    // The last answer is out now: a retiring worker can hand the connection over.
    if (this.cur === null && this.engine.handingOff) this.engine.offer(this);
  }

  protected dropUpstream(req: Req, status: number): void {
    if (req.up !== null) { this.stopUpload(); req.up.abort(); req.up = null; }
    if (req.target !== null) { this.engine.inflight.dec(req.target.gen); req.target = null; }
    if (status === 0) { this.logLine(req, 'client'); return; }
    req.status = status;
    req.bytes = 0;
    this.logLine(req, undefined);
  }

  private fail(req: Req, err: Error, target?: Target): void {
    const status = statusFor(err);
    this.engine.log.warn({ status, err: err.message, code: (err as { code?: string }).code, target: target?.id }, 'Proxy error');
    this.respond(req, status, bodyFor(status));
  }

  /** The proxy's own answer to `req`. */
  private respond(req: Req, status: number, body: string): void {
    const persist = req.persist && req.done && this.mayStayOpen();
    this.send(proxyResponse(status, body, !persist, !req.isHead));
    req.persist = persist;
    req.started = true;
    req.status = status;
    req.bytes = req.isHead ? 0 : Buffer.byteLength(body);
    traffic.proxyAnswer(req.gen, status, req.t0);
    this.logLine(req, undefined);
    this.endExchange(req);
  }

  /** The request's one access-log line (if there is an access log): its outcome, once. */
  private logLine(req: Req, cut: Cut | undefined): void {
    const log = this.engine.accessLog;
    if (log === null || req.logged) return;
    req.logged = true;
    // Nothing of an answer went out: whatever status the exchange had in mind, none was sent.
    if (cut !== undefined && !req.started) req.status = 0;
    req.cut = cut;
    log.record(req);
  }

  /**
   * While stopping, a connection closes after its answer — unless requests pipelined behind
   * it were read already: they are answered first, the last of them with the close.
   */
  private mayStayOpen(): boolean {
    return !this.engine.stopping || this.queued > 0;
  }

  private endExchange(req: Req): void {
    if (req.target !== null) { this.engine.inflight.dec(req.target.gen); req.target = null; }
    req.responded = true;
    this.release(HOLD_UPSTREAM);
    if (!req.persist) { this.hold(HOLD_DONE); this.closeAfterWrites(); return; }
    // The rest of an unfinished request body is read and dropped before the next request.
    if (req.done) this.next();
  }

  /** This connection becomes a tunnel: the engine connects it upstream and joins the two. */
  protected startUpgrade(req: Req): void {
    this.cur = req;
    req.t0 = process.hrtime.bigint();
    this.detachInput();
    this.engine.upgrade(this.socket, req.head, req.rest, this.engine.accessLog === null ? null : req);
  }
}
