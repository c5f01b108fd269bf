// Moving open keep-alive connections from a retiring worker to its replacement.
//
// Invariant: a connection is handed over only at a request boundary where no byte has been
// read beyond the last complete request. Reading is stopped and the check made in the same
// tick; bytes the client sends afterwards wait in the kernel and travel with the fd.
//
// The check uses Node's own per-connection parser state: the server's connections list
// reports a connection as idle while its parser has seen no byte of a new message (the same
// list http.Server#closeIdleConnections uses). Without it (another Node version) nothing is
// handed over and connections are closed gracefully instead.
import type http from 'node:http';
import net from 'node:net';
import type { HandOff } from './engine.js';

interface StreamHandle {
  readStop(): number;
  readStart(): number;
}

interface HttpSocket extends net.Socket {
  _handle: StreamHandle | null;
  _httpMessage: http.ServerResponse | null;
  parser: unknown;
}

const SWEEP_MS = 25;

export class Handover {
  private sockets = new Set<HttpSocket>();
  private moving = new Set<HttpSocket>();
  private handOff: HandOff | undefined;
  handed = 0;

  constructor(private servers: http.Server[]) {}

  /** Every client connection of `server` is tracked from now on. */
  track(server: http.Server): void {
    server.on('connection', (s: net.Socket) => {
      const sock = s as HttpSocket;
      this.sockets.add(sock);
      sock.once('close', () => this.sockets.delete(sock));
    });
  }

  /** A connection that switched protocols is a tunnel now, not an HTTP connection. */
  forget(socket: net.Socket): void {
    this.sockets.delete(socket as HttpSocket);
  }

  get size(): number {
    return this.sockets.size;
  }

  /** Feeds a handed-over connection to the first server, as if it had just accepted it. */
  adopt(handle: unknown, keepAliveTimeoutMs: number): void {
    // `handle` is how net.Server itself wraps an accepted connection (not in the public types).
    const socket = new net.Socket({ handle, readable: true, writable: true, allowHalfOpen: true } as net.SocketConstructorOpts);
    this.servers[0]!.emit('connection', socket);
    // An idle connection gets the usual idle limit; Node's server closes it when it fires.
    socket.setTimeout(keepAliveTimeoutMs);
  }

  /**
   * Hands over every connection as it reaches a boundary, until none is left or the
   * deadline passes. Resolves with how many are still open.
   */
  async retire(handOff: HandOff, timeoutMs: number): Promise<number> {
    this.handOff = handOff;
    if (!this.supported()) return this.sockets.size;
    for (const s of this.servers) {
      s.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
        res.once('finish', () => setImmediate(() => this.offer(req.socket as HttpSocket, this.idleParsers())));
      });
    }
    const deadline = Date.now() + timeoutMs;
    while (this.sockets.size > this.moving.size && Date.now() < deadline) {
      const idle = this.idleParsers();
      for (const s of this.sockets) this.offer(s, idle);
      await new Promise((r) => setTimeout(r, SWEEP_MS));
    }
    while (this.moving.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, SWEEP_MS));
    return this.sockets.size;
  }

  private offer(socket: HttpSocket, idle: Set<unknown>): void {
    const handle = socket._handle;
    if (!this.handOff || socket.destroyed || !handle || this.moving.has(socket)) return;
    handle.readStop();
    const busy = socket._httpMessage !== null && socket._httpMessage !== undefined && !socket._httpMessage.writableFinished;
    if (busy || !idle.has(socket.parser)) {
      handle.readStart();
      return;
    }
    // From here nothing may read from it again here: not even Node resuming a paused socket.
    const readStart = handle.readStart;
    handle.readStart = () => 0;
    this.moving.add(socket);
    this.handOff(handle).then(
      () => {
        this.handed++;
        socket.destroy();
        this.moving.delete(socket);
      },
      () => {
        handle.readStart = readStart;
        handle.readStart();
        this.moving.delete(socket);
      },
    );
  }

  private idleParsers(): Set<unknown> {
    const out = new Set<unknown>();
    for (const s of this.servers) {
      const list = connectionsList(s);
      if (list) for (const p of list.idle()) out.add(p);
    }
    return out;
  }

  private supported(): boolean {
    return this.servers.every((s) => connectionsList(s) !== undefined);
  }
}

function connectionsList(server: http.Server): { idle(): unknown[] } | undefined {
  const sym = Object.getOwnPropertySymbols(server).find((k) => k.description === 'http.server.connections');
  return sym ? (server as unknown as Record<symbol, { idle(): unknown[] }>)[sym] : undefined;
}
