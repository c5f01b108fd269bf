// Upstream side of the raw engine: per-target pools of keep-alive connections to backends,
// one request at a time per connection, responses parsed with Node's llhttp.
import net from 'node:net';
import type { Target } from '../../ipc.js';
import { keepAliveMs } from './heads.js';
import { UPSTREAM_IDLE_MS } from '../engine.js';
import { UpstreamClosedError, UpstreamTimeoutError, UpstreamUnhealthyError } from '../../errors.js';
import { BACKLOG_RETRIES, backlogDelayMs, isBacklogFull } from '../failure.js';
import { PENDING, WROTE, closeParser, newParser, readConnection, resetParser, writeNow, type NativeParser, type ParseError, type ReadTap } from '../../internals/index.js';
import { BodyPump, type PumpOwner } from './body-pump.js';
import type { UploadTarget } from './upload-pump.js';


/** What an upstream connection reports to the client exchange it serves. */
export interface Exchange {
  readonly socket: net.Socket;
  /** Returns 1 when the response has no body (a HEAD request), else 0. */
  onResponseHead(status: number, msg: string, headers: string[], keepAlive: boolean): number;
  /** The first byte of an answer (a 1xx too) arrived. */
  onFirstByte(): void;
  /** A 1xx response before the answer (100 Continue, 103 Early Hints). */
  onInformational(status: number, msg: string, headers: string[]): void;
  /** A piece of the answer's body, as latin1 text (always inside a batch: endBatch tells whether the client keeps up). */
  onResponseBody(text: string): void;
  /**
   * What the client is sent while one read of the backend is parsed is written at its end, in
   * one write (as a cork would); false: the client is not keeping up, and the upstream pauses
   * until the client drains.
   */
  beginBatch(): void;
  endBatch(): boolean;
  /**
   * `trailers`: the trailer fields of a chunked response (flat name/value list), or null;
   * `pumped`: body bytes the body pump moved (not seen by onResponseBody).
   */
  onResponseEnd(trailers: string[] | null, pumped?: number): void;
  onUpstreamError(err: Error): void;
  onUpstreamDrain(): void;
  /** Idempotent, without a body, not answered yet: it may be sent to another instance. */
  resendable(): boolean;
}

export class UpstreamPool {
  private idle: UpConn[] = [];
  readonly all = new Set<UpConn>();
  closed = false;

  /** `timeoutMs`: --backend-timeout, for the error message (the sweep counts the time). */
  constructor(readonly target: Target, readonly timeoutMs: number) {}

  /** An idle connection that is still fresh, or a new one. */
  acquire(x: Exchange): UpConn {
    const now = Date.now();
    let up: UpConn | undefined;
    while ((up = this.idle.pop()) !== undefined) {
      if (now - up.idleSince < up.keepAliveMs) break;
      up.destroy();
    }
    if (up === undefined) up = new UpConn(this);
    up.attach(x);
    return up;
  }

  release(up: UpConn): void {
    if (this.closed) { up.destroy(); return; }
    up.idleSince = Date.now();
    this.idle.push(up);
  }

  remove(up: UpConn): void {
    this.all.delete(up);
    const i = this.idle.indexOf(up);
    if (i >= 0) this.idle.splice(i, 1);
  }

  /**
   * Drops idle connections past their keep-alive time, and fails exchanges whose backend has
   * been silent for `silentLimit` sweeps.
   */
  sweep(now: number, silentLimit: number): void {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const up = this.idle[i]!;
      if (now - up.idleSince >= up.keepAliveMs) up.destroy();
    }
    for (const up of this.all) up.tick(silentLimit);
  }

  /**
   * The instance left rotation: exchanges still waiting for the first byte of an answer that
   * can safely go elsewhere are failed now (and sent again by the client side), instead of
   * waiting out --backend-timeout on an instance that is hung.
   */
  abandon(): void {
    for (const up of [...this.all]) up.abandon();
  }

  /** No new requests; idle connections close now, busy ones when their response is done. */
  close(): void {
    this.closed = true;
    for (const up of [...this.idle]) up.destroy();
  }

  /** Everything closes now; busy exchanges see an error. */
  destroy(): void {
    this.closed = true;
    for (const up of [...this.all]) up.destroy();
  }
}

// One instance for every exchange: it carries nothing of the request it ends.
const CLOSED = new UpstreamClosedError();
const EMPTY = Buffer.alloc(0);
const UNHEALTHY = new UpstreamUnhealthyError();

/** onResponseHead's answer when the body is to go by the pump (llhttp's "skip body, upgrade": it stops after the head). */
export const PUMP_BODY = 2;
const NO_PUMP = -2;

export class UpConn implements PumpOwner, UploadTarget {
  socket: net.Socket;
  /** What was written while connecting, kept to write again if the backend's queue was full (null once connected). */
  private unsent: Array<[string | Buffer, BufferEncoding | undefined]> | null = [];
  /** Connects refused for a full accept queue so far. */
  private full = 0;
  private parser: NativeParser;
  private x: Exchange | null = null;
  idleSince = 0;
  keepAliveMs = UPSTREAM_IDLE_MS;
  private lastKeepAlive: string | undefined;
  /** The backend may take another request after this response. */
  private reusable = false;
  /** The request (head and body) was written completely. */
  requestSent = false;
  /** Writes straight to the handle (this one's, the upload pump's) not completed yet. */
  handleWrites = 0;
  /** A 1xx response is being parsed: it is not the answer. */
  private informational = false;
  /** The head of the answer was parsed: header fields from now on are trailers. */
  private inBody = false;
  private trailers: string[] | null = null;
  /** Reading stopped until the client drains. */
  private paused = false;
  private dead = false;
  private hdrs: string[] | null = null;
  /** Sweeps since the backend last sent a byte or took one; reset by any traffic. */
  private silent = 0;
  /** Any byte of a response (a 1xx too) arrived for the current exchange. */
  private answered = false;
  /** The body of the answer being parsed goes by the pump: its Content-Length, -1 chunked. */
  private pumpLength = NO_PUMP;
  private pump: BodyPump | null = null;
  /**
   * Body bytes of the answer still to come, counted here instead of parsed: a Content-Length
   * body the pump does not take, taken from the reads as text (the parser stopped after the
   * head, which spares a native callback and a Buffer copy per piece).
   */
  private bodyLeft = 0;
  /** A head was in the parser's current execute. */
  private seen = false;
  /** The parser's last execute ended at a stop after a head (see resetParser). */
  private afterStop = false;
  private reads!: ReadTap;

  constructor(private pool: UpstreamPool) {
    pool.all.add(this);
    this.parser = this.newParser();
    this.socket = this.connect();
  }

  private connect(): net.Socket {
    const s = net.connect(this.pool.target.address);
    s.setNoDelay(true);
    s.once('connect', () => { this.unsent = null; });
    // Each read is parsed as it arrives and nothing of it is kept but copies (see onData).
    this.reads = readConnection(s, this.onData);
    s.on('drain', this.onDrain);
    s.on('end', this.onEnd);
    s.on('error', this.onError);
    s.on('close', this.onClose);
    return s;
  }

  /** The backend's accept queue was full (nothing was sent): the same connection again, a moment later. */
  private reconnect(): void {
    const old = this.socket;
    old.removeAllListeners();
    old.on('error', () => {});
    old.destroy();
    setTimeout(() => {
      if (this.dead) return;
      const pending = this.unsent ?? [];
      this.unsent = [];
      this.socket = this.connect();
      for (const [data, encoding] of pending) this.write(data, encoding);
    }, backlogDelayMs(this.full));
  }

  private newParser(): NativeParser {
    const { onHeaders, onHeadersComplete, onBody, onMessageComplete } = this;
    return newParser('response', { onHeaders, onHeadersComplete, onBody, onMessageComplete });
  }

  /** Called by the exchange from onResponseHead (which then returns PUMP_BODY). */
  pumpBody(length: number): void {
    this.pumpLength = length;
  }

  /** Called by the exchange from onResponseHead (which then returns PUMP_BODY): the body is `length` (> 0) bytes, counted here. */
  countBody(length: number): void {
    this.bodyLeft = length;
  }

  heard(): void {
    this.silent = 0;
  }

  /** Connected, and what was written while connecting is with the socket for good. */
  get connected(): boolean {
    return this.unsent === null && !this.dead;
  }

  pumped(bytes: number, trailers: string[] | null, extra: boolean): void {
    this.pump = null;
    this.pumpLength = NO_PUMP;
    // Bytes after the end of the answer: nobody asked for them, so the connection is spoiled.
    if (extra) this.reusable = false;
    this.complete(trailers, bytes);
  }

  pumpFailed(err: Error): void {
    this.fail(err);
  }

  attach(x: Exchange): void {
    this.x = x;
    this.reusable = false;
    this.requestSent = false;
    this.silent = 0;
    this.answered = false;
  }

  /** Writes request bytes; false when the socket's buffer is full (wait for onUpstreamDrain). */
  write(data: string | Buffer, encoding?: BufferEncoding): boolean {
    this.silent = 0;
    if (this.unsent !== null) this.unsent.push([data, encoding]);
    else if (typeof data !== 'string' || encoding === 'latin1') {
      const r = writeNow(this.socket, data, this.written);
      if (r === WROTE) return true;
      if (r === PENDING) { this.handleWrites++; return false; }
    }
    return encoding === undefined ? this.socket.write(data) : this.socket.write(data, encoding);
  }

  /** A write of write() that libuv finished later. */
  private written = (status: number): void => {
    this.handleWrites--;
    if (status < 0) { this.socket.destroy(); return; }
    this.silent = 0;
    this.x?.onUpstreamDrain();
  };

  /**
   * One sweep of the backend timeout. The clock runs only while the backend owes us
   * something: not while reading is paused for a slow client, and not while the rest of an
   * upload is still to come from the client (nothing of it waiting to be written).
   */
  tick(limit: number): void {
    if (this.x === null || this.paused || this.pump?.waiting) return;
    if (!this.requestSent && this.socket.writableLength === 0 && this.handleWrites === 0) { this.silent = 0; return; }
    if (++this.silent >= limit) this.fail(new UpstreamTimeoutError(this.pool.timeoutMs));
  }

  abandon(): void {
    if (this.x !== null && !this.answered && this.x.resendable()) this.fail(UNHEALTHY);
  }

  /** The client went away mid-exchange: this connection is in an unknown state. */
  abort(): void {
    this.x = null;
    this.destroy();
  }

  /** The client caught up with the response: read on. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.silent = 0;
    this.reads.resume();
  }

  destroy(): void {
    if (this.dead) return;
    this.dead = true;
    this.pool.remove(this);
    this.pump?.stop();
    this.socket.destroy();
    closeParser(this.parser);
  }

  private onData = (d: Buffer): void => {
    const x = this.x;
    if (x === null) { this.destroy(); return; } // bytes nobody asked for
    this.silent = 0;
    if (!this.answered) { this.answered = true; x.onFirstByte(); }
    x.beginBatch();
    // Past the head of a counted body the parser has nothing to do until the next answer.
    const r = this.bodyLeft > 0 ? 0 : this.execute(d);
    if (this.bodyLeft > 0 && typeof r === 'number') this.takeBody(d, r);
    if (!x.endBatch() && this.x === x) this.pause();
    if (typeof r !== 'number') { this.fail(r); return; }
    // The head asked for the pump: the parser stopped after it, the rest is the body's.
    if (this.pumpLength !== NO_PUMP && this.pump === null && this.x !== null) {
      const c = x.socket;
      this.pump = new BodyPump(this, this.socket, c, this.pumpLength);
      // A copy: `d` is the read buffer the next read fills again.
      this.pump.start(r === d.length ? EMPTY : Buffer.from(d.subarray(r)), c);
    }
  };

  private execute(d: Buffer): number | ParseError {
    const after = this.afterStop;
    this.afterStop = false;
    this.seen = false;
    const r = this.parser.execute(d);
    if (!after || this.seen) return r;
    // Past a stop and no head complete: the start of the next one, or an error not reported
    // (resetParser). Parsed again afresh (nothing of it was taken but header fields).
    resetParser(this.parser, 'response');
    this.hdrs = null;
    return this.parser.execute(d);
  }

  private onHeaders = (headers: string[]): void => {
    if (this.inBody) this.trailers = this.trailers === null ? headers : this.trailers.concat(headers);
    else this.hdrs = this.hdrs === null ? headers : this.hdrs.concat(headers);
  };

  private onHeadersComplete = (_maj: number, _min: number, headers: string[] | undefined, _m: unknown, _u: unknown,
    status: number, msg: string, _upgrade: boolean, keepAlive: boolean): number => {
    if (headers === undefined) headers = this.hdrs ?? [];
    this.hdrs = null;
    this.seen = true;
    const x = this.x;
    if (status < 200) {
      this.informational = true;
      x?.onInformational(status, msg, headers);
      return 0;
    }
    this.reusable = keepAlive;
    this.inBody = true;
    const r = x === null ? 0 : x.onResponseHead(status, msg, headers, keepAlive);
    if (r === PUMP_BODY) this.afterStop = true;
    return r;
  };

  /** The backend's Keep-Alive value, from the response head (parsed only when it changes). */
  setKeepAlive(value: string | undefined): void {
    if (value === this.lastKeepAlive) return;
    this.lastKeepAlive = value;
    this.keepAliveMs = keepAliveMs(value, UPSTREAM_IDLE_MS);
  }

  private onBody = (chunk: Buffer): void => {
    const x = this.x;
    x?.onResponseBody(chunk.toString('latin1'));
  };

  /** The counted body's bytes from `d` (from `at` on); its last one ends the answer. */
  private takeBody(d: Buffer, at: number): void {
    const n = Math.min(this.bodyLeft, d.length - at);
    if (n > 0) {
      this.bodyLeft -= n;
      this.x!.onResponseBody(d.toString('latin1', at, at + n));
    }
    if (this.bodyLeft > 0) return;
    // Bytes after the end of the answer: nobody asked for them, so the connection is spoiled.
    if (at + n < d.length) this.reusable = false;
    this.complete(null, 0);
  }

  /** Stops reading until the client drains (resume()). */
  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.reads.pause();
  }

  private onMessageComplete = (): void => {
    if (this.informational) { this.informational = false; return; }
    // llhttp ends a message it stops at ("upgrade") here: the pump, or the count, ends this one.
    if (this.pumpLength !== NO_PUMP || this.bodyLeft > 0) return;
    const trailers = this.trailers;
    this.trailers = null;
    this.complete(trailers, 0);
  };

  private complete(trailers: string[] | null, pumped: number): void {
    const x = this.x;
    this.x = null;
    this.inBody = false;
    // Backpressure was the finished exchange's: a pooled connection that stayed paused would
    // never read its next response (and an idle one must read, to see the backend close it).
    this.resume();
    if (this.reusable && this.requestSent && !this.dead && this.keepAliveMs > 0) this.pool.release(this);
    else this.destroy();
    x?.onResponseEnd(trailers, pumped);
  }

  private onDrain = (): void => {
    this.x?.onUpstreamDrain();
  };

  private onEnd = (): void => {
    // A close-delimited response ends here.
    if (this.x !== null) {
      const r = this.parser.finish();
      if (r !== undefined) this.fail(r);
    }
    if (this.x !== null) this.fail(CLOSED);
    this.destroy();
  };

  private onError = (err: Error): void => {
    if (isBacklogFull(err) && this.unsent !== null && this.full < BACKLOG_RETRIES && !this.dead) {
      this.full++;
      this.reconnect();
      return;
    }
    this.fail(err);
  };

  private onClose = (): void => {
    this.fail(CLOSED);
    this.destroy();
  };

  private fail(err: Error): void {
    const x = this.x;
    this.x = null;
    this.destroy();
    x?.onUpstreamError(err);
  }
}
