// The reading half of a raw-engine client connection: llhttp callbacks, pipelined requests
// queued in order (the socket pauses while any wait), header and idle timeouts, malformed
// input. What is done with a parsed request is the exchange's business (raw-client-conn.ts).
import { traffic } from '../../metrics/traffic.js';
import type net from 'node:net';
import { MAX_HEADER_FIELDS, REQ_BODY, isWebSocket, peerOf, type Peer } from '../headers.js';
import type { RawEngine } from './engine.js';
import { requestHead } from './heads.js';
import {
  canShed, closeParser, freezeReads, methods, newParser, readConnection, rebindParser, resetParser, statusForParseError,
  type Frozen, type NativeParser, type ParseError, type ReadTap,
} from '../../internals/index.js';
import { giveBack, rejection, takeReq, type Req } from './request.js';
import { PUMP_MIN_BYTES } from './body-pump.js';
import { UploadPump, type UploadOwner, type UploadTarget } from './upload-pump.js';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
// Reasons to stop reading the client (the socket reads while none is set).
export const HOLD_QUEUE = 1;
export const HOLD_UPSTREAM = 2;
export const HOLD_ROUTE = 4;
export const HOLD_DONE = 8;

// A connection between requests holds no parser (2.6 KiB of native memory on Node 20, 7 KiB
// on 26: most of what an idle keep-alive connection costs); it takes one, from those kept for
// reuse, when a request begins, and gives it back when it is idle again. So parsers follow
// requests in progress, not connections. Taking one costs its re-initialisation (an async
// resource reset), on a busy connection once per request: so up to SPARE_PARSERS connections
// keep theirs between requests ("parked") until a sweep finds them idle, and the extra memory
// stays bounded whatever a burst of requests on many connections did.
const SPARE_PARSERS = 64;
const spareParsers: NativeParser[] = [];
let parkedParsers = 0;

/** The connection a parser works for. Its callbacks are shared: the binding calls them on the parser (as Node's own http does). */
const OWNER = Symbol('hotproxy.owner');
type Owned = NativeParser & { [OWNER]?: ClientInput | null };
/** The connection a socket is read by: its event listeners are shared too (EventEmitter calls them on the socket). */
export const CONN = Symbol('hotproxy.conn');
export type ConnSocket = net.Socket & { [CONN]?: ClientInput };

export abstract class ClientInput implements UploadOwner {
  private parser: NativeParser | null = null;
  /** The connection is idle and keeps its parser (counted in parkedParsers). */
  private parked = false;
  /** Inside the parser's execute (its callbacks run). */
  private executing = false;
  private peer: Peer;
  /** The parser has seen a byte of a message it has not completed. */
  inMessage = false;
  /** A head was in the parser's current execute. */
  private seen = false;
  /** The parser's last execute ended at a stop after a head (see resetParser). */
  private afterStop = false;
  /** A request head is due: since the accept, or since the first byte of a later request. */
  private headDue: boolean;
  private headTicks = 0;
  private idleTicks = 0;
  moving = false;
  private hdrs: string[] | null = null;
  private urlPart = '';
  /** Set by the head callback when the head is refused (too many fields). */
  private refused = 0;
  /** The exchange in progress, the request being parsed, and pipelined ones waiting. */
  protected cur: Req | null = null;
  private parsing: Req | null = null;
  private queue: Req[] = [];
  private upgrading: Req | null = null;
  private holds = 0;
  private ended = false;
  protected closed = false;
  /** A status to answer (then close) once the exchanges before it are done. */
  private pendingError = 0;
  private reads: ReadTap;
  /**
   * Body bytes of the request being read still to come, counted here instead of parsed: a
   * Content-Length body, read here (forwarded, or dropped once the exchange is done with it),
   * a big one taken by the upload pump once the exchange's backend connection is up.
   */
  private bodyLeft = 0;
  private upload: UploadPump | null = null;

  /** `fresh`: just accepted (a head is due now), not handed over idle from another worker. */
  constructor(protected engine: RawEngine, readonly socket: net.Socket, fresh: boolean) {
    this.headDue = fresh;
    this.peer = peerOf(socket.remoteAddress, engine.trusted);
    // Each read is parsed as it arrives and nothing of it is kept but copies (see onData).
    this.reads = readConnection(socket, this.onData);
    (socket as ConnSocket)[CONN] = this;
    socket.on('end', ClientInput.socketEnd);
    socket.on('error', noop);
    socket.on('close', ClientInput.socketClose);
  }

  /** A parsed request becomes the exchange in progress. */
  protected abstract start(req: Req): void;
  protected abstract startUpgrade(req: Req): void;
  /**
   * The exchange's backend connection, if it is connected and the client's reads can go to
   * it at the handle level (canTap), else null.
   */
  protected abstract uploadTarget(req: Req): UploadTarget | null;
  /** Writes `text` (latin1) to the client, after all written before. */
  protected abstract send(text: string): void;
  /** Closes the connection once everything sent is written. */
  protected abstract closeAfterWrites(): void;
  /** Writes that went straight to the handle and are not complete yet (the stream knows nothing of them). */
  protected handleWrites = 0;
  /** A body chunk of the exchange in progress, once it has an upstream. */
  protected abstract requestBody(req: Req, chunk: Buffer): void;
  /** The request of the exchange in progress was parsed to its end. */
  protected abstract requestEnd(req: Req): void;
  /**
   * Lets go of the exchange's upstream connection and in-flight count: the proxy answers
   * `status` instead, or (0) the connection is closing under it.
   */
  protected abstract dropUpstream(req: Req, status: number): void;

  /**
   * No exchange, nothing queued, no byte of a next request read, and every byte of the last
   * answer written to the kernel (bytes still in the stream would be lost with this process):
   * the connection may move.
   */
  atBoundary(): boolean {
    return this.cur === null && this.queue.length === 0 && !this.inMessage && this.holds === 0 && this.pendingError === 0
      && !this.ended && !this.closed && this.socket.readableLength === 0 && this.socket.writableLength === 0 && this.handleWrites === 0;
  }

  /** Parsed requests waiting behind the exchange in progress. */
  protected get queued(): number {
    return this.queue.length;
  }

  /** Called by the engine's sweep: header timeout (408), idle keep-alive timeout, and an idle connection's parser. */
  tick(headLimit: number, idleLimit: number): void {
    if (this.moving || this.closed) return;
    if (this.headDue) {
      if (++this.headTicks >= headLimit) { this.headDue = false; this.reject(408); }
    } else if (this.cur === null && !this.inMessage) {
      if (++this.idleTicks >= idleLimit) { this.socket.destroy(); return; }
      this.dropParserIfIdle();
      if (this.idleTicks >= this.engine.shedTicks) this.engine.shed(this);
    }
  }

  /** Sweeps it has been idle for. */
  get idleFor(): number {
    return this.idleTicks;
  }

  /** Stops reads at the handle, for a hand-over (freezeReads). */
  freeze(): Frozen | null {
    return freezeReads(this.socket);
  }

  /** Idle, with no parser and nothing buffered: the connection can go on as its bare handle. */
  sheddable(): boolean {
    return this.parser === null && this.upload === null && this.atBoundary() && canShed(this.socket);
  }

  /** Lets go of the socket for good, leaving it open (it becomes an IdleConn). */
  shedInput(): void {
    this.letGo();
    this.socket.off('error', noop);
  }

  /** Reads and events of the socket stop coming here: it is someone else's now (a tunnel, an IdleConn). */
  protected letGo(): void {
    const s = this.socket;
    this.reads.release();
    s.off('end', ClientInput.socketEnd);
    s.off('close', ClientInput.socketClose);
    (s as ConnSocket)[CONN] = undefined;
    this.closed = true;
  }

  /** Bytes read before this connection had a socket of its own again (IdleConn): parsed as a read. */
  feed(chunk: Buffer): void {
    this.onData(chunk);
  }

  private takeParser(): NativeParser {
    this.afterStop = false;
    const spare = spareParsers.pop();
    const p: Owned = spare === undefined ? newParser('request', ClientInput.callbacks) : rebindParser(spare, 'request', ClientInput.callbacks);
    p[OWNER] = this;
    return p;
  }

  // Not closures of each connection: an idle one holds no parser, and so nothing of one.
  private static readonly callbacks = {
    onMessageBegin(this: Owned): void { this[OWNER]!.onMessageBegin(); },
    onHeaders(this: Owned, headers: string[], url: string): void { this[OWNER]!.onHeaders(headers, url); },
    onHeadersComplete(this: Owned, maj: number, min: number, headers: string[] | undefined, method: number, url: string | undefined,
      s: unknown, m: unknown, upgrade: boolean, keepAlive: boolean): number {
      return this[OWNER]!.onHeadersComplete(maj, min, headers, method, url, s, m, upgrade, keepAlive);
    },
    onBody(this: Owned, chunk: Buffer): void { this[OWNER]!.onBody(chunk); },
    onMessageComplete(this: Owned): void { this[OWNER]!.onMessageComplete(); },
  };

  /**
   * Gives the parser back once nothing is parsed or waiting (kept for another connection, or
   * freed). Not while it executes: one of its callbacks may be what made the connection idle.
   */
  private dropParserIfIdle(): void {
    const p = this.parser;
    if (p === null || this.executing || !this.parserIdle()) return;
    this.unpark();
    this.parser = null;
    (p as Owned)[OWNER] = null;
    if (spareParsers.length < SPARE_PARSERS) spareParsers.push(p);
    else closeParser(p);
  }

  /** The connection went idle: it keeps its parser while few do, else gives it back. */
  private parkParser(): void {
    if (this.parser === null || this.parked || this.executing) return;
    if (parkedParsers >= SPARE_PARSERS) { this.dropParserIfIdle(); return; }
    if (!this.parserIdle()) return;
    this.parked = true;
    parkedParsers++;
  }

  /** Nothing is parsed or waiting to be: the parser has no message to go on with. */
  private parserIdle(): boolean {
    return !this.inMessage && this.cur === null && this.queue.length === 0 && this.upgrading === null && !this.closed;
  }

  private unpark(): void {
    if (!this.parked) return;
    this.parked = false;
    parkedParsers--;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData = (d: Buffer): void => {
    this.idleTicks = 0;
    this.unpark();
    for (;;) {
      if (this.bodyLeft > 0) {
        d = this.countBody(d);
        // After a request that closes the connection nothing is read (llhttp's rule too).
        if (d.length === 0 || this.holds & HOLD_DONE) break;
      }
      const r = this.parse(d);
      if (r <= 0 || r >= d.length) break;
      d = d.subarray(r);
    }
    if (this.bodyLeft > 0 && this.upload === null) this.startUpload();
  };

  /** Parses `d`: how much of it the parser took, or -1 when nothing more of this read is for it. */
  private parse(d: Buffer): number {
    const parser = (this.parser ??= this.takeParser());
    const after = this.afterStop;
    this.afterStop = false;
    this.executing = true;
    this.seen = false;
    let r = parser.execute(d);
    if (after && !this.seen && this.refused === 0) {
      // Past a stop and no head complete: the start of the next one, or an error not reported
      // (resetParser). Parsed again afresh (nothing of it was taken but header fields).
      resetParser(parser, 'request');
      this.hdrs = null;
      this.urlPart = '';
      // Its message begins again (its first byte called back already).
      this.inMessage = false;
      r = parser.execute(d);
    }
    this.executing = false;
    if (this.refused !== 0) { this.reject(this.refused); return -1; }
    if (typeof r !== 'number') { this.parseError(r); return -1; }
    // The parser stopped after a head whose body is counted here (it takes the next request
    // as it is: llhttp resumes after such a stop at the start of a message).
    if (this.bodyLeft > 0) return r;
    this.parkParser();
    // llhttp stops after a request with Upgrade; one that is not tunnelled goes on as HTTP.
    const u = this.upgrading;
    if (u === null) return r;
    this.upgrading = null;
    this.hold(HOLD_DONE);
    // A copy: `d` is the read buffer the next read fills again.
    if (r < d.length) u.rest = Buffer.from(d.subarray(r));
    if (u.method === 'CONNECT') { this.reject(400); return -1; }
    if (this.cur === null) this.startUpgrade(u);
    else this.queue.push(u);
    return -1;
  }

  /** Takes the counted body's bytes from the front of `d` (forwarded or dropped); returns the rest. */
  private countBody(d: Buffer): Buffer {
    const take = Math.min(this.bodyLeft, d.length);
    this.bodyLeft -= take;
    // A copy: `d` is the read buffer the next read fills again.
    if (!this.parsing!.responded) this.onBody(Buffer.from(d.subarray(0, take)));
    if (this.bodyLeft === 0) this.messageEnd();
    return d.subarray(take);
  }

  /** The upload pump takes the rest of the body, once the exchange's backend connection is up. */
  private startUpload(): void {
    const req = this.parsing;
    if (req === null || req !== this.cur || req.responded || this.closed || req.length < PUMP_MIN_BYTES) return;
    const up = this.uploadTarget(req);
    if (up === null) return;
    this.upload = new UploadPump(this, this.socket, up, this.bodyLeft);
    this.bodyLeft = 0;
  }

  /** The pump let go of the reads `left` bytes short (or not): what is left is read here again. */
  private endUpload(): void {
    const u = this.upload!;
    this.upload = null;
    this.bodyLeft = u.left;
    if (this.holds !== 0) this.reads.pause();
  }

  uploaded(extra: Buffer | null): void {
    this.endUpload();
    this.messageEnd();
    if (extra !== null && !(this.holds & HOLD_DONE) && !this.closed) this.onData(extra);
  }

  uploadStopped(): void {
    this.endUpload();
  }

  /** The exchange is done with its backend connection: the rest of an upload is read (and dropped) here. */
  protected stopUpload(): void {
    if (this.upload === null) return;
    this.upload.stop();
    this.endUpload();
  }

  private onMessageBegin(): void {
    this.inMessage = true;
    if (!this.headDue) { this.headDue = true; this.headTicks = 0; }
  }

  private onHeaders(headers: string[], url: string): void {
    // After the head, fields are the trailer section of a chunked body.
    const p = this.parsing;
    if (p !== null) { p.trailers = p.trailers === null ? headers : p.trailers.concat(headers); return; }
    this.hdrs = this.hdrs === null ? headers : this.hdrs.concat(headers);
    this.urlPart += url;
  }

  private onHeadersComplete(maj: number, min: number, headers: string[] | undefined, method: number, url: string | undefined,
    _s: unknown, _m: unknown, upgrade: boolean, keepAlive: boolean): number {
    if (headers === undefined) { headers = this.hdrs ?? []; url = this.urlPart; }
    this.hdrs = null;
    this.urlPart = '';
    this.headDue = false;
    this.seen = true;
    if (headers.length > MAX_HEADER_FIELDS * 2) { this.refused = 431; return -1; }
    const req = takeReq();
    const m = methods()[method]!;
    req.method = m;
    req.url = url!;
    req.client = this.peer.ip;
    req.isHead = m === 'HEAD';
    req.http10 = maj === 0 || (maj === 1 && min === 0);
    req.persist = keepAlive;
    // Only a WebSocket becomes a tunnel; another Upgrade offer (h2c) is declined by leaving
    // Connection/Upgrade out, and the request is an ordinary one.
    const tunnel = upgrade && (m === 'CONNECT' || isWebSocket(headers));
    req.upgrade = tunnel;
    req.head = requestHead(req, m, url!, headers, this.peer, tunnel, req.http10);
    req.retryable = (req.flags & REQ_BODY) === 0 && IDEMPOTENT.has(m);
    this.parsing = req;
    // A body with a length is counted, not parsed ("skip body, upgrade": llhttp stops after
    // the head), which spares a native callback and a copy per read of it; a big one goes by
    // the upload pump.
    const counted = !tunnel && req.length > 0;
    if (counted) this.bodyLeft = req.length;
    if (tunnel) { this.upgrading = req; return 0; }
    if (this.cur === null) this.start(req);
    else { this.queue.push(req); this.hold(HOLD_QUEUE); }
    if (!counted) return 0;
    this.afterStop = true;
    return 2;
  }

  private onBody(chunk: Buffer): void {
    const req = this.parsing;
    if (req === null || req.responded) return;
    if (req === this.cur && req.up !== null) this.requestBody(req, chunk);
    else (req.body ??= []).push(chunk);
  }

  private onMessageComplete(): void {
    // llhttp ends a message it stops at here: for a counted body, its last byte ends it.
    if (this.bodyLeft > 0) return;
    this.messageEnd();
  }

  private messageEnd(): void {
    this.inMessage = false;
    const req = this.parsing;
    this.parsing = null;
    if (req === null) return;
    req.done = true;
    if (!req.persist) this.hold(HOLD_DONE);
    if (req === this.cur) this.requestEnd(req);
  }

  /** The exchange in progress is over: the next queued request, a pending error, or a hand-over. */
  protected next(): void {
    const req = this.cur!;
    this.cur = null;
    giveBack(req);
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
    if (this.ended) { this.closeAfterWrites(); return; }
    this.parkParser();
    if (this.engine.handingOff) this.engine.offer(this);
  }

  /** The connection stops being HTTP here (it becomes a tunnel); the parser goes. */
  protected detachInput(): void {
    this.socket.pause();
    this.letGo();
    this.engine.detach(this);
    this.unpark();
    if (this.parser !== null) closeParser(this.parser);
    this.parser = null;
  }

  private parseError(err: ParseError): void {
    this.hold(HOLD_DONE);
    if (err.code === 'HPE_CLOSED_CONNECTION') return; // bytes after a request that closes the connection
    const status = statusForParseError(err.code);
    const p = this.parsing;
    this.parsing = null;
    if (p !== null && p === this.cur) {
      // The body being forwarded is broken: the upstream request cannot be completed.
      if (p.started) { this.socket.destroy(); return; }
      this.dropUpstream(p, status);
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
    traffic.proxyAnswer(0, status, process.hrtime.bigint());
    this.send(rejection(status));
    this.closeAfterWrites();
  }

  private static socketEnd(this: ConnSocket): void {
    this[CONN]!.onEnd();
  }

  private static socketClose(this: ConnSocket): void {
    this[CONN]!.onClose();
  }

  private onEnd(): void {
    this.ended = true;
    const p = this.parsing;
    if (p !== null && p === this.cur && !p.done) { this.socket.destroy(); return; } // a cut request
    if (p !== null) { this.queue.pop(); this.parsing = null; this.bodyLeft = 0; }
    if (this.cur === null) this.socket.destroy();
  }

  private onClose(): void {
    this.closed = true;
    this.upload?.stop();
    this.upload = null;
    this.engine.detach(this);
    if (this.cur !== null) this.dropUpstream(this.cur, 0);
    this.queue.length = 0;
    this.unpark();
    if (this.parser !== null) closeParser(this.parser);
    this.parser = null;
  }

  protected hold(bit: number): void {
    // While the upload pump has the reads, it alone stops and starts them (endUpload catches up).
    if (this.holds === 0 && this.upload === null) this.reads.pause();
    this.holds |= bit;
  }

  protected release(bit: number): void {
    if ((this.holds & bit) === 0) return;
    this.holds &= ~bit;
    if (this.holds === 0 && !this.closed && this.upload === null) this.reads.resume();
  }
}

function noop(): void {}
