// Reads and writes of an http connection at the libuv handle level, for the stretch of an
// exchange where it only moves body bytes (body-pump.ts). A net.Socket pays per read for a
// Readable push and a 'data' event, per write for a Writable's bookkeeping; a 1 MiB answer
// the backend wrote in 1 KiB pieces is a thousand of each. Here a read goes straight to the
// caller and a write straight to the other handle, as tcp mode's splice does.
//
// The socket stays a net.Socket throughout: while tapped its handle's reads come here instead
// of to its stream, and release() gives them back (an EOF or a read error is handed back as
// it arrives, so net sees the end and errors of a connection as usual). Writes are ordered
// with the stream's own because both end in libuv's one write queue; the caller starts only
// when the stream holds nothing of its own (writableLength 0).
// Internals (as splice.ts): process.binding('stream_wrap') for WriteWrap and streamBaseState,
// the TCP handle's onread / readStart / readStop / writeBuffer and its `reading` flag.
import type { Socket } from 'node:net';
import { has } from './index.js';
import { loadStreamWrap } from './splice.js';

interface Req { oncomplete: (status: number) => void; buffer?: Uint8Array }
interface Handle {
  onread: (arrayBuffer?: ArrayBuffer) => unknown;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: Req, data: Uint8Array): number;
  reading?: boolean;
}

const handleOf = (s: Socket): Handle | undefined => (s as unknown as { _handle?: Handle | null })._handle ?? undefined;

/** Both sockets can be tapped: the binding is there, the handles are plain connected streams. */
export function canTap(from: Socket, to: Socket): boolean {
  if (!has('stream-wrap')) return false;
  const a = handleOf(from) as Partial<Handle> | undefined;
  const b = handleOf(to) as Partial<Handle> | undefined;
  return !!a && !!b && !from.destroyed && !to.destroyed && typeof a.onread === 'function' && typeof a.readStart === 'function' &&
    typeof a.readStop === 'function' && typeof b.writeBuffer === 'function';
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

/**
 * Reads of `from` go to `onData` until release(), each in the buffer Node allocated for that
 * read (the caller may keep it, e.g. while a write sends from it). Only after canTap().
 */
export function tap(from: Socket, to: Socket, onData: (chunk: Buffer) => void): Tap {
  const w = loadStreamWrap()!;
  const { streamBaseState: state, kReadBytesOrError: kRead, kLastWriteWasAsync: kAsync } = w;
  const kOffset = (w as unknown as { kArrayBufferOffset: number }).kArrayBufferOffset;
  const src = handleOf(from)!;
  const dst = handleOf(to)!;
  const original = src.onread;
  let released = false;
  src.onread = function onread(this: Handle, arrayBuffer?: ArrayBuffer) {
    const n = state[kRead]!;
    if (n > 0 && arrayBuffer !== undefined) { onData(Buffer.from(arrayBuffer, state[kOffset]!, n)); return; }
    if (n === 0) return;
    // The end of the connection, or an error: net's own handling, as if never tapped.
    release();
    return original.call(this, arrayBuffer);
  };
  const setReading = (on: boolean): void => {
    if (released || from.destroyed || src.reading === on) return;
    src.reading = on;
    if (on) src.readStart(); else src.readStop();
  };
  const release = (): void => {
    if (released) return;
    setReading(true);
    released = true;
    src.onread = original;
  };
  return {
    pause: () => setReading(false),
    resume: () => setReading(true),
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
