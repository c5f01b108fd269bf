// The rest of a big upload (a Content-Length request body), moved from the client's socket to
// the backend's at the handle level, as body-pump.ts moves big answers the other way: per read
// one write, no parser, no copy. A chunked upload stays with the parser, which re-frames it:
// its chunk lines would otherwise reach the backend as the client wrote them.
//
// Invariant: every byte the pump counted was written to the kernel (its write completed)
// before it reports the end, and it reads nothing past the body's last byte that it does not
// hand back (`extra`, a pipelined request).
import type net from 'node:net';
import { tap, type Tap } from '../../internals/index.js';

/** The backend connection the upload goes to. */
export interface UploadTarget {
  readonly socket: net.Socket;
  /** Writes of the pump not completed yet (the backend is not taking the upload). */
  handleWrites: number;
  /** The backend took bytes: it is alive. */
  heard(): void;
}

export interface UploadOwner {
  /** Every body byte is with the backend's kernel; `extra`: bytes read after the body (a copy). */
  uploaded(extra: Buffer | null): void;
  /** A write failed (the backend is gone): the pump let go of the client's reads, `left` bytes short. */
  uploadStopped(): void;
}

const NOTHING = Buffer.alloc(0);

export class UploadPump {
  private t: Tap;
  private dead = false;
  private inFlight = 0;
  private extra: Buffer | null = null;
  private finished = false;

  /** `left`: body bytes still to come from the client. */
  constructor(private owner: UploadOwner, client: net.Socket, private up: UploadTarget, public left: number) {
    this.t = tap(client, up.socket, this.onData);
    this.t.pause();
    // What the backend's stream holds (the head, body bytes read before) goes first; an empty
    // write's callback comes once it is all out.
    const s = up.socket;
    if (s.writableLength === 0 && !s.connecting) this.go();
    else s.write(NOTHING, this.go);
  }

  private go = (err?: Error | null): void => {
    if (this.dead) return;
    if (err) { this.fail(); return; }
    this.t.resume();
  };

  /** The exchange lets go of the upload (the answer came, or a side closed): reads go back to the connection. */
  stop(): void {
    if (this.dead) return;
    this.dead = true;
    this.up.handleWrites -= this.inFlight;
    this.t.release();
  }

  private onData = (d: Buffer): void => {
    if (this.dead || this.finished) return;
    const take = Math.min(this.left, d.length);
    this.left -= take;
    if (take > 0) this.send(take === d.length ? d : d.subarray(0, take));
    if (this.left > 0) return;
    this.finished = true;
    // A copy: the rest is in the connection's read buffer, which the next read fills again.
    if (take < d.length) this.extra = Buffer.from(d.subarray(take));
    this.t.pause();
    if (this.inFlight === 0) this.report();
  };

  private send(b: Buffer): void {
    this.inFlight++;
    this.up.handleWrites++;
    this.t.write(b, this.written);
    // One write in flight, as a proxy buffer: reading waits for the backend to take it.
    if (this.inFlight > 0 && !this.dead) this.t.pause();
  }

  private written = (status: number): void => {
    if (this.dead) return;
    this.inFlight--;
    this.up.handleWrites--;
    if (status < 0) { this.fail(); return; }
    this.up.heard();
    if (this.inFlight > 0) return;
    if (this.finished) this.report();
    else this.t.resume();
  };

  private report(): void {
    this.dead = true;
    this.t.release();
    this.owner.uploaded(this.extra);
  }

  private fail(): void {
    this.stop();
    this.owner.uploadStopped();
  }
}
