// An idle keep-alive connection of the raw engine, held as its bare handle (internals: shed):
// no net.Socket, no streams, no exchange state. A socket and its streams are most of what an
// idle connection costs, and most keep-alive connections are idle. Its next bytes put a socket
// over it again and make it a ClientConn, which parses them; its end or the idle timeout
// closes it; a retiring worker hands it over as it is.
import type net from 'node:net';
import { bareReading, closeBare, shed, type BareOwner, type Frozen } from '../../internals/index.js';
import type { RawEngine } from './engine.js';

export class IdleConn implements BareOwner {
  moving = false;
  private closed = false;
  readonly handle: unknown;

  /** Takes `socket`'s handle (canShed(), its reads and listeners let go of); the socket is done. */
  constructor(private engine: RawEngine, socket: net.Socket, private idleTicks: number) {
    this.handle = shed(socket, this);
  }

  onBareData(chunk: Buffer): void {
    this.engine.wake(this, chunk);
  }

  onBareEnd(): void {
    this.destroy();
  }

  /** Called by the engine's sweep: the idle keep-alive timeout goes on counting. */
  tick(_headLimit: number, idleLimit: number): void {
    if (this.moving || this.closed) return;
    if (++this.idleTicks >= idleLimit) this.destroy();
  }

  atBoundary(): boolean {
    return !this.closed;
  }

  freeze(): Frozen {
    bareReading(this.handle, false);
    return { handle: this.handle, thaw: () => { if (!this.closed) bareReading(this.handle, true); } };
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    closeBare(this.handle);
    this.engine.detach(this);
  }
}
