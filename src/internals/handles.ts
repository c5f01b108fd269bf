// libuv handles under Node's sockets: stopping reads at the handle (so no byte more enters
// this process before a connection moves), sockets sent over IPC as raw handles and rebuilt
// on the other side, http.Server's own list of idle connections, and, for the master,
// listeners bound without listening and fds to pass to children.
import type http from 'node:http';
import net from 'node:net';

interface StreamHandle {
  readStart(): number;
  readStop(): number;
  /** Node's own record of whether it asked libuv to read. */
  reading?: boolean;
}

interface TcpBinding {
  TCP?: { prototype: Partial<StreamHandle> };
}

/** Handles can be frozen and sent on: what the hand-over of open connections needs. */
export function handoverUsable(): boolean {
  try {
    const tcp = (process as unknown as { binding(n: string): TcpBinding }).binding('tcp_wrap');
    const p = tcp.TCP?.prototype;
    return typeof p?.readStart === 'function' && typeof p.readStop === 'function';
  } catch {
    return false;
  }
}

const handleOf = (s: net.Socket): StreamHandle | null => (s as unknown as { _handle?: StreamHandle | null })._handle ?? null;

export interface Frozen {
  /** The raw handle, to send to another process. */
  readonly handle: unknown;
  /** The hand-over failed: reading goes on here as before. */
  thaw(): void;
}

/**
 * Stops `socket` reading at the handle, and keeps Node from starting it again, so whatever
 * the peer sends next waits in the kernel and travels with the fd. Call it only once the
 * connection is known to be at a request boundary (flowing, nothing buffered): probing a
 * socket Node itself paused for backpressure and starting it again behind Node's back makes
 * Node's next readStart fail with EALREADY, and Node destroys the connection.
 */
export function freezeReads(socket: net.Socket): Frozen | null {
  const h = handleOf(socket);
  if (h === null || socket.destroyed || typeof h.readStop !== 'function') return null;
  const reading = h.reading === true;
  const readStart = h.readStart;
  h.readStop();
  h.readStart = () => 0;
  return {
    handle: h,
    thaw(): void {
      h.readStart = readStart;
      if (reading && !socket.destroyed) h.readStart();
    },
  };
}

/** A socket around a handle another process sent (as net.Server wraps an accepted one). */
export function socketFromHandle(handle: unknown): net.Socket {
  return new net.Socket({ handle, readable: true, writable: true, allowHalfOpen: true } as net.SocketConstructorOpts);
}

interface Channel {
  send(message: unknown, handle: never, options: { keepOpen: boolean }, cb: (err: Error | null) => void): boolean;
}

/** Sends a raw handle over IPC; resolves once it is on its way (then close the local copy). */
export function sendHandle(channel: Channel, message: unknown, handle: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    channel.send(message, handle as never, { keepOpen: true }, (err) => (err ? reject(err) : resolve()));
  });
}

/** Closes a raw handle received over IPC that nobody will use. */
export function closeHandle(handle: unknown): void {
  (handle as { close?: () => void } | undefined)?.close?.();
}

// http.Server keeps its connections in a list whose idle() are those whose parser has seen
// no byte of a new message: the list closeIdleConnections() uses.
interface ConnectionsList { idle(): unknown[] }

function connectionsList(server: http.Server): ConnectionsList | undefined {
  const sym = Object.getOwnPropertySymbols(server).find((k) => k.description === 'http.server.connections');
  const list = sym ? (server as unknown as Record<symbol, ConnectionsList | undefined>)[sym] : undefined;
  return typeof list?.idle === 'function' ? list : undefined;
}

/** The parsers of every idle connection of `servers`, or null where Node keeps no such list. */
export function idleHttpParsers(servers: http.Server[]): Set<unknown> | null {
  const out = new Set<unknown>();
  for (const s of servers) {
    const list = connectionsList(s);
    if (list === undefined) return null;
    for (const p of list.idle()) out.add(p);
  }
  return out;
}

/**
 * A client that half-closes after its request (sends FIN, reads on) still gets its answer:
 * Node's http server aborts such a request unless its (undocumented, long-standing)
 * httpAllowHalfOpen is set; it then answers and closes after the answer, as HAProxy does.
 */
export function answerHalfClosed(server: http.Server): void {
  (server as unknown as { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
}

interface HttpSocket extends net.Socket {
  _httpMessage?: http.ServerResponse | null;
  parser?: unknown;
}

/** A response is still being written on it, or bytes of one are still in the stream. */
export function isBusyHttpSocket(socket: net.Socket): boolean {
  const m = (socket as HttpSocket)._httpMessage;
  return (m !== null && m !== undefined && !m.writableFinished) || socket.writableLength > 0;
}

/** The http parser Node's server gave this connection (matched against idleHttpParsers). */
export function httpParserOf(socket: net.Socket): unknown {
  return (socket as HttpSocket).parser;
}

// The master binds listeners without listening (its own loop would accept) — how Node's
// cluster module shares them — and passes the fds of listening sockets to children.

export interface BoundHandle {
  fd: number;
  getsockname(out: Record<string, unknown>): number;
  close(): void;
}

type CreateServerHandle = (address: string, port: number, addressType: number, fd?: number) => BoundHandle | number;

const createServerHandle = (): CreateServerHandle | undefined => (net as unknown as { _createServerHandle?: CreateServerHandle })._createServerHandle;

/** A bound, not listening, socket; or a negative errno. `family`: 4, 6, or -1 for a path. */
export function bindServerHandle(address: string, port: number, family: number): BoundHandle | number {
  return createServerHandle()!(address, port, family);
}

/** A handle around a listening fd this process inherited (systemd's). */
export function inheritedServerHandle(fd: number): BoundHandle | number {
  return createServerHandle()!(undefined as unknown as string, 0, 0, fd);
}

interface HandleWithFd {
  fd: number;
  setBlocking(blocking: boolean): number;
}

/**
 * The fd of a listening net.Server, switched to blocking mode: O_NONBLOCK lives on the shared
 * file description, and a blocking accept loop (Perl, Python, C) would get EAGAIN and die.
 */
export function listeningFd(server: net.Server): number {
  const h = (server as unknown as { _handle: HandleWithFd })._handle;
  h.setBlocking(true);
  return h.fd;
}

/** What the master needs and this Node lacks, or undefined. */
export function masterHandlesUsable(): string | undefined {
  if (typeof createServerHandle() !== 'function') return 'net._createServerHandle';
  return undefined;
}
