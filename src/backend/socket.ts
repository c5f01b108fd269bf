// The private socket a backend instance receives. It is created here, already listening
// (the Server::Starter contract), handed to the child as fd 3 and closed here in the same
// tick: if this process kept it, its own event loop would accept connections meant for the app.
import net from 'node:net';
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import type { Address } from '../address.js';
import type { BackendKind } from '../options.js';

export interface PrivateSocket {
  address: Address;
  /** The listening fd to pass as fd 3; undefined for port-env backends, which bind $PORT. */
  fd: number | undefined;
  /** Drop this process's copy. Call right after spawning. */
  release(): void;
}

interface HandleWithFd {
  fd: number;
  setBlocking(blocking: boolean): number;
}

export async function openPrivateSocket(kind: BackendKind, runtimeDir: string, name: string): Promise<PrivateSocket> {
  if (kind === 'port-env') return { address: { host: '127.0.0.1', port: await freePort() }, fd: undefined, release() {} };
  const server = net.createServer();
  let address: Address;
  if (kind === 'unix') {
    const path = join(runtimeDir, `${name}.sock`);
    // Closing a unix server unlinks its path even though the child still listens on it:
    // bind a temporary name and rename it, so the close unlinks a name nobody uses.
    await listen(server, { path: `${path}.tmp` });
    renameSync(`${path}.tmp`, path);
    address = { path };
  } else {
    await listen(server, { host: '127.0.0.1', port: 0 });
    address = { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port };
  }
  const handle = (server as unknown as { _handle: HandleWithFd })._handle;
  // O_NONBLOCK lives on the shared file description: libuv set it, and a blocking accept
  // loop (Perl, Python, C) would get EAGAIN and die. Node children set it back themselves.
  handle.setBlocking(true);
  return { address, fd: handle.fd, release: () => server.close() };
}

function listen(server: net.Server, opts: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => server.once('error', reject).listen(opts, resolve));
}

/** A loopback port nobody listens on right now, for apps that only read $PORT. */
function freePort(): Promise<number> {
  const s = net.createServer();
  return listen(s, { host: '127.0.0.1', port: 0 }).then(() => {
    const { port } = s.address() as net.AddressInfo;
    return new Promise((resolve) => s.close(() => resolve(port)));
  });
}
