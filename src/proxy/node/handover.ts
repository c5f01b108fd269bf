// Moving open keep-alive connections from a retiring node-engine worker to its replacement.
//
// Invariant: a connection is handed over only at a request boundary where no byte has been
// read beyond the last complete request and every byte of the last answer left this process.
// The check and the stop of reading happen in the same tick; bytes the client sends
// afterwards wait in the kernel and travel with the fd.
//
// The check uses Node's own per-connection parser state: the server's connections list
// reports a connection as idle while its parser has seen no byte of a new message (the list
// http.Server#closeIdleConnections uses). Where that list or the handle tricks are missing
// (src/internals), nothing is handed over and connections are closed gracefully instead.
import type http from 'node:http';
import type net from 'node:net';
import type { HandOff } from '../engine.js';
import { freezeReads, has, httpParserOf, idleHttpParsers, isBusyHttpSocket, socketFromHandle } from '../../internals/index.js';

const SWEEP_MS = 25;

export class Handover {
  private sockets = new Set<net.Socket>();
  private moving = new Set<net.Socket>();
  private handOff: HandOff | undefined;
  handed = 0;

  constructor(private servers: http.Server[]) {}

  /** Every client connection of `server` is tracked from now on. */
  track(server: http.Server): void {
    server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
  }

  /** A connection that switched protocols is a tunnel now, not an HTTP connection. */
  forget(socket: net.Socket): void {
    this.sockets.delete(socket);
  }

  /** Open client connections (tunnels not counted). */
  get size(): number {
    return this.sockets.size;
  }

  /** Feeds a handed-over connection to the first server, as if it had just accepted it. */
  adopt(handle: unknown, keepAliveTimeoutMs: number): void {
    const socket = socketFromHandle(handle);
    this.servers[0]!.emit('connection', socket);
    // An idle connection gets the usual idle limit; Node's server closes it when it fires.
    socket.setTimeout(keepAliveTimeoutMs);
  }

  /** Whether connections can move at all on this Node. */
  supported(): boolean {
    return has('handover') && idleHttpParsers(this.servers) !== null;
  }

  /**
   * Hands over every connection as it reaches a boundary, until none is left or the
   * deadline passes. Resolves with how many are still open. Only where supported().
   */
  async retire(handOff: HandOff, timeoutMs: number): Promise<number> {
    this.handOff = handOff;
    for (const s of this.servers) {
      s.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
        res.once('finish', () => setImmediate(() => this.offer(req.socket, idleHttpParsers(this.servers))));
      });
    }
    const deadline = Date.now() + timeoutMs;
    while (this.sockets.size > this.moving.size && Date.now() < deadline) {
      const idle = idleHttpParsers(this.servers);
      for (const s of this.sockets) this.offer(s, idle);
      await new Promise((r) => setTimeout(r, SWEEP_MS));
    }
    while (this.moving.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, SWEEP_MS));
    return this.sockets.size;
  }

  private offer(socket: net.Socket, idle: Set<unknown> | null): void {
    if (!this.handOff || idle === null || socket.destroyed || this.moving.has(socket)) return;
    if (isBusyHttpSocket(socket) || !idle.has(httpParserOf(socket)) || socket.readableLength > 0) return;
    const frozen = freezeReads(socket);
    if (frozen === null) return;
    this.moving.add(socket);
    this.handOff(frozen.handle).then(
      () => {
        this.handed++;
        socket.destroy();
        this.moving.delete(socket);
      },
      () => {
        frozen.thaw();
        this.moving.delete(socket);
      },
    );
  }
}
