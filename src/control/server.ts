// The control socket of a running master: `hotproxy reload|status|stop` talk to it. It lives
// in the 0700 runtime directory and is itself 0600: only the user who runs hotproxy may
// deploy or stop it. It is never served on a public listener.
import net from 'node:net';
import { chmodSync, rmSync } from 'node:fs';
import { describe } from '../errors.js';
import type { Logger } from '../log.js';
import type { ControlRequest, ControlResponse } from './protocol.js';

export type ControlHandler = (req: ControlRequest) => Promise<ControlResponse>;

export class ControlServer {
  private server: net.Server;

  private constructor(readonly path: string, handler: ControlHandler, log: Logger) {
    this.server = net.createServer((sock) => {
      sock.on('error', () => {});
      let buf = '';
      sock.on('data', (d) => {
        buf += d.toString();
        const i = buf.indexOf('\n');
        if (i < 0) return;
        const line = buf.slice(0, i);
        sock.pause();
        let req: ControlRequest;
        try {
          req = JSON.parse(line) as ControlRequest;
        } catch {
          sock.end(`${JSON.stringify({ ok: false, error: 'bad request: not JSON' })}\n`);
          return;
        }
        log.info({ cmd: req.cmd }, 'Control command');
        handler(req).then(
          (res) => sock.end(`${JSON.stringify(res)}\n`),
          (err) => sock.end(`${JSON.stringify({ ok: false, error: describe(err) })}\n`),
        );
      });
    });
  }

  static async open(path: string, handler: ControlHandler, log: Logger): Promise<ControlServer> {
    const c = new ControlServer(path, handler, log.child({ component: 'control' }));
    // Created 0600 from the start (umask), not chmod'ed afterwards: no window for others.
    const old = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => c.server.once('error', reject).listen(path, resolve));
    } finally {
      process.umask(old);
    }
    chmodSync(path, 0o600);
    return c;
  }

  /** Stops taking commands; a command in progress (a `stop`) still gets its answer. */
  close(): void {
    this.server.close();
    rmSync(this.path, { force: true });
  }
}
