// The body of a big answer, moved from the backend's socket to the client's at the handle
// level (internals/handle-io.ts) instead of through the parser and both streams: per read one
// write, whatever the backend's write sizes were. A Content-Length body is counted down; a
// chunked one goes through verbatim, chunk sizes, extensions and all (the client gets the same
// framing the backend wrote), scanned here only for where it ends. Its last chunk and trailers
// are the exception: they are parsed and handed to the exchange, which writes them as the
// parsed path does (lastChunk, with the trailer fields worth passing on).
//
// Invariant: every byte the pump took is in the kernel (its write completed) before it reports
// the end, so an exchange it ends leaves nothing in this process: the connection may move.
import type net from 'node:net';
import { tap, type Tap } from '../../internals/index.js';
import { UpstreamProtocolError } from '../../errors.js';

/** What the pump reports to the upstream connection it serves. */
export interface PumpOwner {
  /** A read arrived (the backend is alive). */
  heard(): void;
  /** `extra`: bytes after the end of the body (the connection cannot be reused). */
  pumped(bytes: number, trailers: string[] | null, extra: boolean): void;
  pumpFailed(err: Error): void;
}

/** Answers smaller than this take the parsed path: the switch costs more than it saves. */
export const PUMP_MIN_BYTES = 64 * 1024;
const MAX_LINE = 16 * 1024;
const CR = 13;
const LF = 10;

const NOTHING = Buffer.alloc(0);

const enum S { Size, Ext, SizeLf, Data, DataCr, DataLf, Trailer, TrailerLf }

export class BodyPump {
  private t: Tap;
  private dead = false;
  /** Body bytes (chunk data only, for a chunked body) passed on. */
  private bytes = 0;
  /** Writes not yet completed. */
  private inFlight = 0;
  private finished: { trailers: string[] | null; extra: boolean } | null = null;
  // Content-Length: bytes still to come (-1: chunked).
  private left: number;
  // Chunked: the scanner's state, the current chunk's size or data left, the size line so far.
  private s = S.Size;
  private n = 0;
  private digits = 0;
  private lineLen = 0;
  /** The start of a size line not complete yet: held back, in case it is the last chunk's. */
  private held: Buffer | null = null;
  private trailerText = '';
  /** Waiting for the client's stream to write out what it holds (the head) first. */
  private starting = false;

  /** `length`: the Content-Length, or -1 for a chunked body. */
  constructor(private owner: PumpOwner, private from: net.Socket, to: net.Socket, length: number) {
    this.left = length;
    this.t = tap(from, to, this.onData);
  }

  /** Starts with `first` (what the read that held the head had after it), once `client`'s stream has written all it holds. */
  start(first: Buffer, client: net.Socket): void {
    this.t.pause();
    const go = (): void => {
      this.starting = false;
      if (this.dead) return;
      this.t.resume();
      this.onData(first);
    };
    if (client.writableLength === 0) { go(); return; }
    // What the stream holds (this head, or the tail of an answer before it) goes first; its
    // 'drain' comes only after a write that filled it, an empty write's callback always.
    this.starting = true;
    client.write(NOTHING, go);
  }

  /** Waiting for the client to take what was written: the backend's silence is not its own. */
  get waiting(): boolean {
    return this.inFlight > 0 || this.starting;
  }

  /** The upstream connection is being destroyed: nothing more is done or reported. */
  stop(): void {
    if (this.dead) return;
    this.dead = true;
    this.t.release();
  }

  private onData = (d: Buffer): void => {
    if (this.dead || this.finished !== null) return;
    this.owner.heard();
    if (this.left >= 0) this.counted(d);
    else this.chunked(d);
  };

  private counted(d: Buffer): void {
    const take = Math.min(this.left, d.length);
    this.left -= take;
    this.bytes += take;
    if (take > 0) this.send(take === d.length ? d : d.subarray(0, take));
    if (this.left === 0) this.finish(null, take < d.length);
  }

  private chunked(d: Buffer): void {
    const len = d.length;
    // Output is this buffer up to where its last size line starts (after any bytes held from
    // the one before); a size line still open at the end is held back.
    let lineStart = this.s === S.Size || this.s === S.Ext || this.s === S.SizeLf ? 0 : -1;
    let i = 0;
    while (i < len) {
      switch (this.s) {
        case S.Data: {
          const take = Math.min(this.n, len - i);
          this.n -= take;
          this.bytes += take;
          i += take;
          if (this.n === 0) this.s = S.DataCr;
          continue;
        }
        case S.DataCr:
          if (d[i++] !== CR) return this.bad('no CRLF after chunk data');
          this.s = S.DataLf;
          continue;
        case S.DataLf:
          if (d[i++] !== LF) return this.bad('no CRLF after chunk data');
          this.s = S.Size;
          this.n = 0;
          this.digits = 0;
          this.lineLen = 0;
          lineStart = i;
          continue;
        case S.Size: {
          const c = d[i]!;
          const v = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
          if (v >= 0) {
            if (++this.digits > 12) return this.bad('chunk size too large');
            this.n = this.n * 16 + v;
          } else if (this.digits === 0) return this.bad('no chunk size');
          else if (c === CR) this.s = S.SizeLf;
          else if (c === 59 /* ; */) this.s = S.Ext;
          else return this.bad('invalid chunk size line');
          i++;
          break;
        }
        case S.Ext: {
          const c = d[i++]!;
          if (c === CR) this.s = S.SizeLf;
          else if (c === LF) return this.bad('bare LF in chunk extension');
          break;
        }
        case S.SizeLf:
          if (d[i++] !== LF) return this.bad('no CRLF after chunk size');
          if (this.n === 0) {
            // The last chunk: what came before its line goes out (not its own start, held
            // from the buffer before); the rest is parsed.
            if (lineStart === 0) this.held = null;
            this.emit(d, lineStart);
            this.s = S.Trailer;
            this.lineLen = 0;
            continue;
          }
          this.s = S.Data;
          lineStart = -1;
          continue;
        case S.Trailer: {
          const c = d[i++]!;
          if (c === CR) { this.s = S.TrailerLf; continue; }
          if (c === LF) return this.bad('bare LF in trailers');
          this.trailerText += String.fromCharCode(c);
          if (this.trailerText.length > MAX_LINE) return this.bad('trailers too long');
          break;
        }
        case S.TrailerLf: {
          if (d[i++] !== LF) return this.bad('no CRLF in trailers');
          if (this.lineLen === 0) { this.endChunked(i < len); return; }
          this.trailerText += '\n';
          this.lineLen = 0;
          this.s = S.Trailer;
          continue;
        }
      }
      if (++this.lineLen > MAX_LINE) return this.bad('chunk size line or trailers too long');
    }
    if (this.s === S.Trailer || this.s === S.TrailerLf) return;
    this.emit(d, lineStart >= 0 ? lineStart : len);
    if (lineStart < 0 || lineStart >= len) return;
    // A copy: `d` is the connection's read buffer, which the next read fills again.
    this.held = this.held === null ? Buffer.from(d.subarray(lineStart)) : Buffer.concat([this.held, d]);
  }

  /** Writes `d` up to `to`, after the start of a size line held back (once the line goes out too). */
  private emit(d: Buffer, to: number): void {
    if (to === 0) return;
    if (this.held !== null) { this.send(this.held); this.held = null; }
    this.send(to === d.length ? d : d.subarray(0, to));
  }

  private endChunked(extra: boolean): void {
    const trailers: string[] = [];
    for (const line of this.trailerText.split('\n')) {
      if (line === '') continue;
      const colon = line.indexOf(':');
      if (colon <= 0 || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(line.slice(0, colon))) return this.bad('invalid trailer field');
      trailers.push(line.slice(0, colon), line.slice(colon + 1).trim());
    }
    this.finish(trailers.length > 0 ? trailers : null, extra);
  }

  private send(b: Buffer): void {
    this.inFlight++;
    this.t.write(b, this.written);
    // One write in flight, as a proxy buffer: reading waits for the client to take it.
    if (this.inFlight > 0 && !this.dead) this.t.pause();
  }

  private written = (status: number): void => {
    this.inFlight--;
    if (this.dead) return;
    // The client is gone: its socket's close ends the exchange; nothing more to move.
    if (status < 0) { this.stop(); return; }
    if (this.inFlight > 0) return;
    if (this.finished !== null) this.report();
    else this.t.resume();
  };

  private finish(trailers: string[] | null, extra: boolean): void {
    this.finished = { trailers, extra };
    this.t.pause();
    if (this.inFlight === 0) this.report();
  }

  private report(): void {
    const f = this.finished!;
    this.dead = true;
    this.t.release();
    this.owner.pumped(this.bytes, f.trailers, f.extra);
  }

  private bad(why: string): void {
    this.stop();
    this.owner.pumpFailed(new UpstreamProtocolError(why));
  }
}
