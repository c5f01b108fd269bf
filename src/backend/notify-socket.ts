// systemd's notification protocol (sd_notify(3)) between a backend and hotproxy: a unix
// datagram socket per instance in the private runtime directory, named to the backend in
// NOTIFY_SOCKET. READY=1 says the app can serve (--health notify); STATUS= lines go to the log.
// Node has no unix datagram sockets, so this takes node-unix-socket (prebuilt N-API binaries);
// where it has no build, backends get no NOTIFY_SOCKET and --health notify is refused at start.
import { createRequire } from 'node:module';
import { rmSync } from 'node:fs';

interface Dgram {
  on(event: 'data', f: (buf: Buffer) => void): void;
  on(event: 'error', f: (err: Error) => void): void;
  bind(path: string): void;
  sendTo(buf: Buffer, offset: number, length: number, path: string, cb?: (err?: Error) => void): void;
  close(): void;
}

let loaded: { DgramSocket: new () => Dgram } | null | undefined;

/** The datagram socket class, or null when this platform has no build of it. */
function dgram(): { DgramSocket: new () => Dgram } | null {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('node-unix-socket') as { DgramSocket: new () => Dgram };
    } catch {
      loaded = null;
    }
  }
  return loaded;
}

export function notifySupported(): boolean {
  return dgram() !== null;
}

export interface NotifyEvents {
  ready(): void;
  status(text: string): void;
}

export class NotifySocket {
  private constructor(readonly path: string, private sock: Dgram) {}

  /** Binds `path`; undefined where unix datagram sockets are not available. */
  static open(path: string, on: NotifyEvents): NotifySocket | undefined {
    const d = dgram();
    if (d === null) return undefined;
    rmSync(path, { force: true });
    const sock = new d.DgramSocket();
    // A malformed or unreadable datagram must never take the master down.
    sock.on('error', () => {});
    sock.on('data', (buf) => {
      for (const line of buf.toString('utf8').split('\n')) {
        if (line === 'READY=1') on.ready();
        else if (line.startsWith('STATUS=')) on.status(line.slice(7));
      }
    });
    sock.bind(path);
    return new NotifySocket(path, sock);
  }

  close(): void {
    try { this.sock.close(); } catch { /* closed already */ }
    rmSync(this.path, { force: true });
  }
}

/** sd_notify from a Node app (the hotproxy/app helper): resolves once sent, or at once without a socket. */
export function sdNotify(message: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const path = env.NOTIFY_SOCKET;
  // Abstract sockets (@…) are systemd's own; this module binds and sends to paths only.
  if (!path || path.startsWith('@')) return Promise.resolve();
  const d = dgram();
  if (d === null) return Promise.resolve();
  return new Promise((resolve) => {
    const sock = new d.DgramSocket();
    sock.on('error', () => {});
    const buf = Buffer.from(message);
    sock.sendTo(buf, 0, buf.length, path, () => { sock.close(); resolve(); });
  });
}
