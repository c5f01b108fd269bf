// The admin listener (--metrics): Prometheus text at /metrics, and probes for the proxy
// itself — /live (the master answers) and /ready (serving: not starting, not stopping).
// It is its own socket, never one of the public listeners.
import http from 'node:http';
import { formatAddress, isPath, type Address } from '../address.js';
import { ListenError } from '../errors.js';
import type { Logger } from '../log.js';

export interface AdminHandlers {
  metrics(): Promise<{ contentType: string; body: string }>;
  /** Undefined when ready, else why not. */
  notReady(): string | undefined;
}

export class AdminServer {
  private constructor(private readonly server: http.Server, readonly address: Address) {}

  static async open(address: Address, handlers: AdminHandlers, log: Logger): Promise<AdminServer> {
    const l = log.child({ component: 'admin' });
    const server = http.createServer((req, res) => {
      const reply = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
        res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'method not allowed\n');
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/live') return reply(200, 'live\n');
      if (path === '/ready') {
        const why = handlers.notReady();
        return why === undefined ? reply(200, 'ready\n') : reply(503, `not ready: ${why}\n`);
      }
      if (path === '/metrics') {
        handlers.metrics().then(
          (m) => reply(200, m.body, m.contentType),
          (err: Error) => { l.error({ err: err.message }, 'Metrics failed'); reply(500, 'metrics failed\n'); },
        );
        return;
      }
      reply(404, 'not found: try /metrics, /ready or /live\n');
    });
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new ListenError(`cannot listen on ${formatAddress(address)} (--metrics): ${err.code ?? err.message}`)));
      server.listen(isPath(address) ? { path: address.path } : { host: address.host, port: address.port }, resolve);
    });
    const a = server.address();
    const bound: Address = typeof a === 'string' || a === null ? address : { host: a.address, port: a.port };
    return new AdminServer(server, bound);
  }

  close(): void {
    this.server.close();
    this.server.closeAllConnections();
  }
}
