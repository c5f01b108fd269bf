// tcp-mode byte pump at the libuv handle level. socket.pipe() pays for Readable/Writable
// bookkeeping, a fresh 64 KiB read allocation and a nextTick per chunk; here each read lands
// in a fixed per-direction buffer and goes straight to the other handle's writeBuffer, which
// is about a third less proxy CPU per request. Node internals used (Node 20-24):
// process.binding('stream_wrap') for WriteWrap/ShutdownWrap and the streamBaseState slots, and
// the TCP handle's onread / useUserBuffer / readStart / readStop / writeBuffer / shutdown.
// When any of them is missing (or switched off), canSplice() says no and the caller pipes instead.
import type { Socket } from 'node:net';
import { constants } from 'node:os';
import { has } from './index.js';

/** Like HAProxy's default bufsize: a connection that moves little holds little. */
const BUF_SIZE = 16 * 1024;
/** A direction whose read filled the buffer moves bulk: from then on it reads this much at a time. */
const BULK_SIZE = 64 * 1024;
const UV_EOF = -4095;
const UV_ENOTCONN = -constants.errno.ENOTCONN;

interface Req { oncomplete: (status: number) => void; buffer?: Uint8Array }
interface Handle {
  onread: (arrayBuffer?: ArrayBuffer) => void;
  useUserBuffer(buf: Uint8Array): void;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: Req, data: Uint8Array): number;
  shutdown(req: Req): number;
}
interface StreamWrap {
  WriteWrap: new () => Req;
  ShutdownWrap: new () => Req;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

let wrap: StreamWrap | null | undefined;
/** The binding, or null when this Node has none of the expected shape. */
export function loadStreamWrap(): StreamWrap | null {
  if (wrap !== undefined) return wrap;
  try {
    const w = (process as unknown as { binding(name: string): Partial<StreamWrap> }).binding('stream_wrap');
    const ok = typeof w.WriteWrap === 'function' && typeof w.ShutdownWrap === 'function' && w.streamBaseState instanceof Int32Array &&
      typeof w.kReadBytesOrError === 'number' && typeof w.kLastWriteWasAsync === 'number';
    wrap = ok ? (w as StreamWrap) : null;
  } catch {
    wrap = null;
  }
  return wrap;
}

const handleOf = (s: Socket): Handle | undefined => (s as unknown as { _handle?: Handle })._handle ?? undefined;

function usable(s: Socket): boolean {
  const h = handleOf(s) as Partial<Handle> | undefined;
  return !!h && !s.destroyed && !s.connecting && s.readableLength === 0 && s.writableLength === 0 &&
    typeof h.useUserBuffer === 'function' && typeof h.readStart === 'function' && typeof h.readStop === 'function' &&
    typeof h.writeBuffer === 'function' && typeof h.shutdown === 'function';
}

/** True when both sockets are plain connected TCP handles with nothing buffered in their streams. */
export function canSplice(a: Socket, b: Socket): boolean {
  return has('stream-wrap') && usable(a) && usable(b);
}

/**
 * Bytes both ways until both directions saw EOF (each EOF passes on as a half-close), then
 * both sockets are destroyed; any read or write error destroys both at once. Either way the
 * sockets emit 'close' as usual. Only when canSplice() said yes.
 */
export function splice(a: Socket, b: Socket): void {
  const w = loadStreamWrap()!;
  const { streamBaseState: state, kReadBytesOrError: kRead, kLastWriteWasAsync: kAsync } = w;
  // Keeps net from starting its own read (afterConnect reads unless the socket is paused).
  a.pause();
  b.pause();
  let ended = 0;
  const kill = (): void => {
    a.destroy();
    b.destroy();
  };
  const pump = (from: Socket, to: Socket): void => {
    const src = handleOf(from)!;
    const dst = handleOf(to)!;
    let buf = Buffer.allocUnsafe(BUF_SIZE);
    src.useUserBuffer(buf);
    let view: Uint8Array = buf;
    // A write that libuv finished synchronously leaves no request behind, so one WriteWrap
    // serves every such write; one that went async keeps its own until it completes.
    let req = new w.WriteWrap();
    const written = (status: number): void => {
      if (status < 0) return kill();
      req = new w.WriteWrap();
      req.oncomplete = written;
      // Reading resumes only now: the pending write was still sending from `buf`.
      if (!from.destroyed) src.readStart();
    };
    req.oncomplete = written;
    src.onread = (): Buffer | undefined => {
      const n = state[kRead]!;
      if (n > 0) {
        if (view.length !== n) view = buf.subarray(0, n);
        if (dst.writeBuffer(req, view) !== 0) { kill(); return undefined; }
        // Backpressure: one chunk in flight per direction, like a proxy buffer.
        if (state[kAsync]) src.readStop();
        if (n < BUF_SIZE || buf.length === BULK_SIZE) return undefined;
        // The binding reads into the buffer onread returns from now on. A write still sending
        // from the old one must keep it alive: the binding does not (net sets req.buffer too).
        if (state[kAsync]) req.buffer = view;
        buf = Buffer.allocUnsafe(BULK_SIZE);
        view = buf;
        return buf;
      }
      if (n === 0) return undefined;
      if (n !== UV_EOF) { kill(); return undefined; }
      // EOF arrives only with no write pending (reads stop meanwhile), so shut down now.
      src.readStop();
      const shut = new w.ShutdownWrap();
      // Like net's end(): a failed shutdown counts as done; the broken peer shows up on read.
      shut.oncomplete = () => {
        if (++ended === 2) kill();
      };
      const err = dst.shutdown(shut);
      // 1: finished synchronously; ENOTCONN: the peer is gone. No callback comes for either.
      if (err === 1 || err === UV_ENOTCONN) shut.oncomplete(0);
      else if (err !== 0) kill();
    };
    src.readStart();
  };
  pump(a, b);
  pump(b, a);
}
