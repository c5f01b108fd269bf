// Public listeners. The master binds them but never calls listen() itself: its own event loop
// would then accept connections. Proxy workers inherit the fds and listen; the socket stays in
// the listening state for as long as the master holds its copy, so connections queue in the
// kernel — none is refused — while workers are being replaced.
import net from 'node:net';
import { lstatSync, unlinkSync } from 'node:fs';
import { getSystemErrorName } from 'node:util';
import { formatAddress, isPath, type Address } from '../address.js';
import { ListenError } from '../errors.js';

interface BoundHandle {
  fd: number;
  getsockname(out: Record<string, unknown>): number;
  close(): void;
}

type CreateServerHandle = (address: string, port: number, addressType: number, fd?: number) => BoundHandle | number;
// Internal but stable: it is how Node's own cluster module shares listeners with workers.
const createServerHandle = (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle;

export interface Listener {
  /** The bound address (a port of 0 is resolved). */
  address: Address;
  fd: number;
  close(): void;
}

export async function bindListeners(addresses: Address[]): Promise<Listener[]> {
  const out: Listener[] = [];
  try {
    for (const a of addresses) out.push(await bind(a));
  } catch (err) {
    for (const l of out) l.close();
    throw err;
  }
  return out;
}

async function bind(a: Address): Promise<Listener> {
  if (isPath(a)) await removeStaleSocket(a.path);
  const h = isPath(a)
    ? createServerHandle(a.path, -1, -1)
    : createServerHandle(a.host, a.port, net.isIP(a.host) === 6 ? 6 : 4);
  if (typeof h === 'number') throw new ListenError(bindMessage(a, h));
  let address: Address = a;
  if (!isPath(a)) {
    const info: { address?: string; port?: number } = {};
    h.getsockname(info);
    // libuv defers EADDRINUSE from bind() to listen(), which the master never calls: an
    // unbound socket shows as port 0 (or another port), and a worker's listen() would then
    // pick a random port. Catch it here.
    if (!info.port || (a.port !== 0 && info.port !== a.port)) {
      h.close();
      throw new ListenError(`cannot listen on ${formatAddress(a)}: address already in use`);
    }
    address = { host: info.address ?? a.host, port: info.port };
  }
  return { address, fd: h.fd, close: () => h.close() };
}

function bindMessage(a: Address, errno: number): string {
  const name = getSystemErrorName(errno);
  const where = formatAddress(a);
  if (name === 'EADDRINUSE') return `cannot listen on ${where}: address already in use`;
  if (name === 'EACCES') return `cannot listen on ${where}: permission denied${!isPath(a) && a.port < 1024 ? ' (ports below 1024 need privileges)' : ''}`;
  if (name === 'EADDRNOTAVAIL') return `cannot listen on ${where}: no such local address`;
  return `cannot listen on ${where}: ${name}`;
}

/** A socket file left by a process that died is removed; one something still listens on is not. */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return;
  }
  if (!isSocket) throw new ListenError(`cannot listen on ${path}: a file that is not a socket is in the way`);
  const live = await new Promise<boolean>((resolve) => {
    const c = net.connect(path);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
  if (live) throw new ListenError(`cannot listen on ${path}: address already in use`);
  unlinkSync(path);
}
