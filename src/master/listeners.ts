// Public listeners. The master binds them but never calls listen() itself: its own event loop
// would then accept connections. Proxy workers inherit the fds and listen; the socket stays in
// the listening state for as long as the master holds its copy, so connections queue in the
// kernel — none is refused — while workers are being replaced.
import net from 'node:net';
import { lstatSync, unlinkSync } from 'node:fs';
import { getSystemErrorName } from 'node:util';
import { resolve as resolvePath } from 'node:path';
import { formatAddress, formatListen, isInherited, isPath, type Address, type ListenSpec } from '../address.js';
import { ListenError } from '../errors.js';
import { unixSocketPath, type InheritedSocket } from './activation.js';
import { bindServerHandle, inheritedServerHandle } from '../internals/index.js';


export interface Listener {
  /** The bound address (a port of 0 is resolved). */
  address: Address;
  fd: number;
  /** Set when systemd passed the socket in: its FileDescriptorName. */
  fdName?: string;
  /** A --listen-tls address: the workers terminate TLS on it. */
  tls?: boolean;
  close(): void;
}

export interface Bound {
  listeners: Listener[];
  /** Sockets systemd passed that no --listen asked for (closed). */
  unused: InheritedSocket[];
}

/**
 * Binds each --listen address, or takes it from the sockets systemd passed: by `fd:N`, by
 * `fdname:NAME` (every socket of that name), or by an address equal to the socket's own.
 * No --listen at all means every passed socket.
 */
export async function bindListeners(specs: ListenSpec[], inherited: InheritedSocket[] = [], tlsSpecs: ListenSpec[] = []): Promise<Bound> {
  const out: Listener[] = [];
  const adopted = inherited.map(adopt);
  const taken = new Set<number>();
  let tls = false;
  const take = (l: Listener): void => { taken.add(l.fd); if (tls) l.tls = true; out.push(l); };
  try {
    if (specs.length === 0 && tlsSpecs.length === 0) adopted.forEach(take);
    for (const [k, s] of [...specs, ...tlsSpecs].entries()) {
      tls = k >= specs.length;
      if (isInherited(s)) {
        const found = adopted.filter((l) => ('fd' in s ? l.fd === s.fd : l.fdName === s.fdName));
        if (found.length === 0) throw new ListenError(`--listen${tls ? '-tls' : ''} ${formatListen(s)}: no such socket was passed in (LISTEN_FDS names ${describeInherited(inherited)})`);
        found.forEach(take);
        continue;
      }
      const same = adopted.find((l) => !taken.has(l.fd) && sameAddress(l.address, s));
      if (same) take(same);
      else { const l = await bind(s); if (tls) l.tls = true; out.push(l); }
    }
  } catch (err) {
    for (const l of out) if (!adopted.includes(l)) l.close();
    for (const l of adopted) l.close();
    throw err;
  }
  const unused = inherited.filter((i) => !taken.has(i.fd));
  for (const l of adopted) if (!taken.has(l.fd)) l.close();
  return { listeners: out, unused };
}

function describeInherited(list: InheritedSocket[]): string {
  return list.length ? list.map((i) => `fd:${i.fd}=${i.name}`).join(', ') : 'none';
}

function adopt(s: InheritedSocket): Listener {
  const h = inheritedServerHandle(s.fd);
  if (typeof h === 'number') throw new ListenError(`the socket systemd passed as fd ${s.fd} (${s.name}) is not usable: ${getSystemErrorName(h)}`);
  const info: { address?: string; port?: number } = {};
  const isTcp = typeof h.getsockname === 'function' && h.getsockname(info) === 0 && info.port !== undefined;
  const address: Address = isTcp ? { host: info.address!, port: info.port! } : { path: unixSocketPath(s.fd) ?? `fd:${s.fd}` };
  return { address, fd: s.fd, fdName: s.name, close: () => h.close() };
}

function sameAddress(have: Address, want: Address): boolean {
  if (isPath(have) || isPath(want)) return isPath(have) && isPath(want) && have.path === resolvePath(want.path);
  const wildcard = (h: string): boolean => h === '0.0.0.0' || h === '::';
  return have.port === want.port && (have.host === want.host || (wildcard(have.host) && wildcard(want.host)));
}

async function bind(a: Address): Promise<Listener> {
  if (isPath(a)) await removeStaleSocket(a.path);
  const h = isPath(a)
    ? bindServerHandle(a.path, -1, -1)
    : bindServerHandle(a.host, a.port, net.isIP(a.host) === 6 ? 6 : 4);
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
