// Reads and writes of an http connection at the libuv handle level. readDirect(): a client's or
// a backend connection's reads go straight to its parser. tap(): for the stretch of an exchange
// where it only moves body bytes (body-pump.ts). A net.Socket pays per read for a
// Readable push and a 'data' event, per write for a Writable's bookkeeping; a 1 MiB answer
// the backend wrote in 1 KiB pieces is a thousand of each. Here a read goes straight to the
// caller and a write straight to the other handle, as tcp mode's splice does.
//
// The socket stays a net.Socket throughout: while tapped its handle's reads come here instead
// of to its stream, and release() gives them back (an EOF or a read error is handed back as
// it arrives, so net sees the end and errors of a connection as usual). Writes are ordered
// with the stream's own because both end in libuv's one write queue; the caller starts only
// when the stream holds nothing of its own (writableLength 0). The exception is shed(): an idle
// connection kept as its bare handle, with no socket at all until its next bytes (wear()).
// Internals (as splice.ts): process.binding('stream_wrap') for WriteWrap and streamBaseState,
// the TCP handle's onread / useUserBuffer (where there is none, Node's own read buffers serve)
// / readStart / readStop / writeBuffer / close and its `reading` flag, and net's owner_symbol on it.
import type { Socket } from 'node:net';
import { has } from './index.js';
import { loadStreamWrap } from './splice.js';
import { socketFromHandle } from './handles.js';

interface Req { oncomplete: (status: number) => void; buffer?: Uint8Array }
interface Handle {
  onread: (arrayBuffer?: ArrayBuffer) => unknown;
  useUserBuffer?(buf: Uint8Array): void;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: Req, data: Uint8Array): number;
  reading?: boolean;
  [READER]?: Reader;
}

/**
 * Where a socket's reads land once hotproxy reads its handle: one buffer shared by every such
 * socket, which is safe while each read is consumed (or copied) before the next one; while
 * tapped (body pump), a buffer of the connection's own, since a write may still send from it
 * when the next read comes. Node would allocate 64 KiB per read, which on Node 26 is a quarter
 * of the CPU of a big answer, in GC alone. The binding reads into the buffer it was last given
 * (useUserBuffer, or onread's return value, which names the next one), and a handle cannot drop
 * a user buffer once given one, so the reader stays: untapped and not read directly, reads are
 * copied out (as Node copies a short read out of its own) and handed to the socket's stream
 * exactly as Node would.
 */
const READ_BUFFER = 64 * 1024;
const READER = Symbol('hotproxy.reader');
interface Reader {
  /** What the handle reads into now (null: Node's own buffers, there being no useUserBuffer). */
  buf: Buffer | null;
  /** The tap's buffer: allocated when tapped, dropped once the handle reads into another. */
  own: Buffer | null;
  tapped: boolean;
  /** readDirect's taker of reads, which has them whenever no tap does. */
  direct: ((chunk: Buffer) => void) | null;
  original: Handle['onread'];
  /** Who takes reads now: the tap's or readDirect's (null: the socket's stream). */
  onData: ((chunk: Buffer) => void) | null;
  /** The tap's, run before an end or error goes to the stream. */
  onEnd: (() => void) | null;
  /** No socket over the handle (shed()): an end or error goes to onEnd alone. */
  bare: boolean;
}

const handleOf = (s: Socket): Handle | undefined => (s as unknown as { _handle?: Handle | null })._handle ?? undefined;

/** Both sockets can be tapped: the binding is there, the handles are plain connected streams. */
export function canTap(from: Socket, to: Socket): boolean {
  if (!has('stream-wrap')) return false;
  const a = handleOf(from) as Partial<Handle> | undefined;
  const b = handleOf(to) as Partial<Handle> | undefined;
  return !!a && !!b && !from.destroyed && !to.destroyed &&
    typeof a.onread === 'function' && typeof a.readStart === 'function' && typeof a.readStop === 'function' && typeof b.writeBuffer === 'function';
}

export interface Tap {
  /** No more reads until resume() (the other side is slow). */
  pause(): void;
  resume(): void;
  /** Reads go back to the socket's stream, which reads on. */
  release(): void;
  /** Writes `data` to the other socket; `done` runs once it is in the kernel (status < 0: failed). */
  write(data: Uint8Array, done: (status: number) => void): void;
}

let shared: Buffer | null = null;
let state: Int32Array;
let kRead: number;
let kOffset: number;

/**
 * Every reader's handle has this as its onread (one function, not a closure per connection).
 * Returns the buffer the next read goes into when it changes, else undefined (as the binding
 * wants: anything else returned is taken for a buffer).
 */
function onread(this: Handle, arrayBuffer?: ArrayBuffer): Buffer | undefined {
  const r = this[READER]!;
  const n = state[kRead]!;
  if (n < 0) {
    // The end of the connection, or an error: net's own handling, as if never tapped.
    r.onEnd?.();
    if (!r.bare) r.original.call(this, arrayBuffer);
    return undefined;
  }
  if (n === 0) return undefined;
  let buf = r.buf;
  if (buf === null) {
    if (r.onData !== null) r.onData(Buffer.from(arrayBuffer!, state[kOffset]!, n));
    else r.original.call(this, arrayBuffer);
    return undefined;
  }
  if (r.onData !== null) {
    // Tapped by a read into the shared buffer (the first since): moved to the tap's own.
    if (r.tapped && buf !== r.own) { buf.copy(r.own!, 0, 0, n); buf = r.own!; }
    r.onData(buf.subarray(0, n));
  } else {
    // The stream keeps what it is given: a copy (small ones from Node's pool, as Buffers are).
    const copy = Buffer.allocUnsafe(n);
    buf.copy(copy, 0, 0, n);
    state[kOffset] = copy.byteOffset;
    r.original.call(this, copy.buffer as ArrayBuffer);
  }
  const next = r.tapped ? r.own! : shared!;
  if (next === r.buf) return undefined;
  r.buf = next;
  if (!r.tapped) r.own = null;
  return next;
}

function readerOf(src: Handle): Reader {
  const existing = src[READER];
  if (existing !== undefined) {
    // A new socket over a shed handle made its own onread the handle's (wear()).
    if (src.onread !== onread) { existing.original = src.onread; src.onread = onread; }
    return existing;
  }
  const w = loadStreamWrap()!;
  state = w.streamBaseState;
  kRead = w.kReadBytesOrError;
  kOffset = (w as unknown as { kArrayBufferOffset: number }).kArrayBufferOffset;
  const r: Reader = { buf: null, own: null, tapped: false, direct: null, original: src.onread, onData: null, onEnd: null, bare: false };
  if (typeof src.useUserBuffer === 'function') {
    r.buf = (shared ??= Buffer.allocUnsafe(READ_BUFFER));
    src.useUserBuffer(r.buf);
  }
  src[READER] = r;
  src.onread = onread;
  return r;
}

/** Starts or stops a handle's reads, keeping its `reading` flag (net's) true to it. */
function setReading(s: Socket, src: Handle, on: boolean): void {
  if (s.destroyed || src.reading === on) return;
  src.reading = on;
  if (on) src.readStart(); else src.readStop();
}

/**
 * Reads of `from` go to `onData` until release(), in the connection's read buffer: the caller
 * must be done with each chunk (its write completed, or a copy kept) before it lets reading
 * go on. Only after canTap().
 */
export function tap(from: Socket, to: Socket, onData: (chunk: Buffer) => void): Tap {
  const w = loadStreamWrap()!;
  const { streamBaseState: state, kLastWriteWasAsync: kAsync } = w;
  const src = handleOf(from)!;
  const dst = handleOf(to)!;
  const reader = readerOf(src);
  if (reader.buf !== null) reader.own ??= Buffer.allocUnsafe(READ_BUFFER);
  reader.tapped = reader.buf !== null;
  let released = false;
  const reading = (on: boolean): void => { if (!released) setReading(from, src, on); };
  const release = (): void => {
    if (released) return;
    reading(true);
    released = true;
    if (reader.onData !== onData) return; // a later tap has the reader now
    reader.onData = reader.direct;
    reader.onEnd = null;
    // The handle still reads into the tap's buffer: the next read moves it back to the shared one.
    reader.tapped = false;
  };
  reader.onData = onData;
  reader.onEnd = release;
  return {
    pause: () => reading(false),
    resume: () => reading(true),
    release,
    write(data, done) {
      if (to.destroyed) { done(-1); return; }
      const req: Req = new w.WriteWrap();
      req.oncomplete = done;
      const err = dst.writeBuffer(req, data);
      if (err !== 0) { done(err); return; }
      if (!state[kAsync]) { done(0); return; }
      // libuv sends from `data` until the request completes, and the binding does not hold on
      // to it (net sets req.buffer likewise): without this the collector may free it first.
      req.buffer = data;
    },
  };
}

export interface ReadTap {
  pause(): void;
  resume(): void;
  /** Reads stop going to the taker: they stay in the socket's stream from now on. */
  release(): void;
}

/**
 * Reads of `s` go to `onData`: straight from the handle where it can be (readDirect), else
 * from the socket's 'data' events (Node without the internals).
 */
export function readConnection(s: Socket, onData: (chunk: Buffer) => void): ReadTap {
  return canReadDirect(s) ? readDirect(s, onData) : new StreamReads(s, onData);
}

class StreamReads implements ReadTap {
  constructor(private s: Socket, private onData: (chunk: Buffer) => void) {
    s.on('data', onData);
  }

  pause(): void {
    this.s.pause();
  }

  resume(): void {
    this.s.resume();
  }

  release(): void {
    this.s.off('data', this.onData);
  }
}

/** `s` can be read by readDirect(): the binding is there, the handle a plain connected stream. */
export function canReadDirect(s: Socket): boolean {
  const h = handleOf(s) as Partial<Handle> | undefined;
  const r = h?.[READER];
  return has('stream-wrap') && !!h && !s.destroyed && s.readableLength === 0 && (r === undefined || (r.onData === null && !r.bare)) &&
    typeof h.onread === 'function' && typeof h.readStart === 'function' && typeof h.readStop === 'function';
}

/**
 * Every read of `s` goes to `onData` as it arrives, not through the socket's stream (its push,
 * 'data' event and read-more tick per read), in a buffer shared by all such sockets: `onData`
 * copies whatever it keeps. The end of the connection and read errors reach the stream as
 * usual. Only after canReadDirect().
 */
export function readDirect(s: Socket, onData: (chunk: Buffer) => void): ReadTap {
  const src = handleOf(s)!;
  const r = readerOf(src);
  r.direct = onData;
  r.onData = onData;
  return new DirectReads(s, src, onData);
}

// A class, not closures: one of these lives with every idle keep-alive connection.
class DirectReads implements ReadTap {
  private released = false;
  constructor(private s: Socket, private src: Handle, private onData: (chunk: Buffer) => void) {}

  pause(): void {
    if (!this.released) setReading(this.s, this.src, false);
  }

  resume(): void {
    if (!this.released) setReading(this.s, this.src, true);
  }

  release(): void {
    if (this.released) return;
    // Reading on: the stream asked for data once and waits for it (it will not ask again).
    setReading(this.s, this.src, true);
    this.released = true;
    const r = this.src[READER]!;
    if (r.direct === this.onData) r.direct = null;
    if (r.onData === this.onData) r.onData = null;
  }
}

/** writeNow()'s outcomes. */
export const WROTE = 1;
export const PENDING = 0;
export const UNABLE = -1;

interface WriteHandle { writeLatin1String?(req: Req, data: string): number; writeBuffer?(req: Req, data: Uint8Array): number }
// A write libuv finishes at once leaves its request unused: the next write takes it.
let spareReq: Req | null = null;

/**
 * Writes `data` (a string: latin1) straight to `s`'s handle, without the Writable's
 * bookkeeping and its tick per write, when that keeps the order of bytes: the stream holds
 * nothing, is not corked, connecting or ended. WROTE: it is in the kernel. PENDING: libuv
 * sends the rest and `done` runs once it has (the stream knows nothing of it: the caller
 * counts it). UNABLE: nothing was written; the stream is the way.
 */
export function writeNow(s: Socket, data: string | Buffer, done: (status: number) => void): number {
  if (!has('stream-wrap') || s.writableLength !== 0 || s.connecting || s.destroyed || s.writableCorked !== 0 || s.writableEnded) return UNABLE;
  const h = handleOf(s) as (Handle & WriteHandle) | undefined;
  if (h === undefined) return UNABLE;
  const w = loadStreamWrap()!;
  const req: Req = spareReq ?? new w.WriteWrap();
  let err: number;
  if (typeof data === 'string') {
    if (typeof h.writeLatin1String !== 'function') return UNABLE;
    err = h.writeLatin1String(req, data);
  } else {
    if (typeof h.writeBuffer !== 'function') return UNABLE;
    err = h.writeBuffer(req, data);
  }
  // A failed write (maybe after some bytes went): the connection is broken, as net would
  // decide on a write error; its close tells the rest.
  if (err !== 0) { spareReq = null; s.destroy(); return WROTE; }
  if (!w.streamBaseState[w.kLastWriteWasAsync]) { spareReq = req; return WROTE; }
  spareReq = null;
  req.oncomplete = done;
  // As tap(): the binding does not keep a Buffer alive for libuv (a string's rest it copies).
  if (typeof data !== 'string') req.buffer = data;
  return PENDING;
}

/** Who is told of a shed handle's first bytes and of its end (shed()). */
export interface BareOwner {
  /** Bytes arrived: wear() a socket over the handle now, before the next read (`chunk` is the read buffer). */
  onBareData(chunk: Buffer): void;
  /** The peer closed, or the connection broke: closeBare() it. */
  onBareEnd(): void;
}

type BareReader = Reader & { owner?: BareOwner | null };

// Shared: the reader calls them on itself (r.onData(chunk), r.onEnd()), and the reader knows its owner.
function bareData(this: BareReader, chunk: Buffer): void { this.owner!.onBareData(chunk); }
function bareEnd(this: BareReader): void { this.owner!.onBareEnd(); }

/** The handle's record of the socket over it (net's owner_symbol), found by its name. */
function ownerKey(h: object): symbol | undefined {
  return Object.getOwnPropertySymbols(h).find((k) => k.description === 'owner_symbol');
}

/**
 * `s` can be shed: read directly by readDirect() now (not tapped), nothing buffered in either
 * direction, a handle net marks as its own and that can be closed on its own.
 */
export function canShed(s: Socket): boolean {
  const h = handleOf(s) as (Handle & { close?: unknown }) | undefined;
  const r = h?.[READER];
  return has('stream-wrap') && has('handover') && !!h && r !== undefined && r.direct !== null && r.onData === r.direct && !r.tapped && !r.bare
    && !s.destroyed && !s.connecting && s.readableLength === 0 && s.writableLength === 0 && !s.writableEnded && typeof h.close === 'function'
    && ownerKey(h) !== undefined;
}

/**
 * Takes `s`'s handle from it and destroys the socket without closing the connection: the
 * handle reads on, its next bytes go to `owner.onBareData` and its end to `owner.onBareEnd`.
 * Only after canShed(), once the socket's reads are released and its listeners gone (it sees
 * a close of its own, with no handle to close). Returns the handle.
 */
export function shed(s: Socket, owner: BareOwner): unknown {
  const h = handleOf(s)!;
  const r = h[READER]! as BareReader;
  r.direct = null;
  r.onData = bareData;
  r.onEnd = bareEnd;
  r.owner = owner;
  r.bare = true;
  // Else the handle would keep the socket, and all it holds, alive.
  (h as unknown as Record<symbol, unknown>)[ownerKey(h)!] = null;
  (s as unknown as { _handle: Handle | null })._handle = null;
  s.destroy();
  bareReading(h, true);
  return h;
}

/** A socket over a shed handle again, to be read directly (readConnection). */
export function wear(handle: unknown): Socket {
  const r = (handle as Handle)[READER]! as BareReader;
  r.onData = null;
  r.onEnd = null;
  r.owner = null;
  r.bare = false;
  return socketFromHandle(handle);
}

/** Stops (false) or starts a shed handle's reads: a hand-over freezes it. */
export function bareReading(handle: unknown, on: boolean): void {
  const h = handle as Handle;
  if (h.reading === on) return;
  h.reading = on;
  if (on) h.readStart(); else h.readStop();
}

export function closeBare(handle: unknown): void {
  const h = handle as Handle & { close(): void };
  (h[READER] as BareReader).owner = null;
  h.close();
}
