// The private socket a backend instance receives. It is created here, already listening
// (the Server::Starter contract), handed to the child as fd 3 and closed here in the same
// tick: if this process kept it, its own event loop would accept connections meant for the app.
import net from 'node:net';
import { LISTEN_BACKLOG } from '../proxy/engine.js';
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import type { Address } from '../address.js';
import type { BackendKind } from '../options.js';
import { listeningFd } from '../internals/index.js';

export interface PrivateSocket {
  address: Address;
  /** The listening fd to pass as fd 3; undefined for port-env backends, which bind $PORT. */
  fd: number | undefined;
  /** Drop this process's copy. Call right after spawning. */
  release(): void;
}

export async function openPrivateSocket(kind: BackendKind, runtimeDir: string, name: string): Promise<PrivateSocket> {
  if (kind === 'port-env') return { address: { host: '127.0.0.1', port: await freePort() }, fd: undefined, release() {} };
  const server = net.createServer();
  let address: Address;
  let release = (): void => void server.close();
  if (kind === 'unix') {
    const path = join(runtimeDir, `${name}.sock`);
    await listen(server, { path });
    address = { path };
    // Closing a unix server unlinks its path, though the child still listens on it. Move the
    // name aside for the close and back (synchronous, one tick): the socket keeps its real
    // name, which is also what the app's getsockname() reports.
    release = () => {
      renameSync(path, `${path}.closing`);
      server.close();
      renameSync(`${path}.closing`, path);
    };
  } else {
    await listen(server, { host: '127.0.0.1', port: 0 });
    address = { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port };
  }
  // Blocking, for accept loops in Perl, Python, C; Node children set non-blocking themselves.
  return { address, fd: listeningFd(server), release };
}

function listen(server: net.Server, opts: net.ListenOptions): Promise<void> {
  // The proxy may open many connections at once (an app that listens again sets its own).
  return new Promise((resolve, reject) => server.once('error', reject).listen({ backlog: LISTEN_BACKLOG, ...opts }, resolve));
}

/** A loopback port nobody listens on right now, for apps that only read $PORT. */
function freePort(): Promise<number> {
  const s = net.createServer();
  return listen(s, { host: '127.0.0.1', port: 0 }).then(() => {
    const { port } = s.address() as net.AddressInfo;
    return new Promise((resolve) => s.close(() => resolve(port)));
  });
}
