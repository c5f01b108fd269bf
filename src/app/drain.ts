// Draining a server without resetting a client. Node's own http `server.close()` closes idle
// keep-alive sockets at once, and a client that is reusing one at that moment gets a reset
// (28–50 failed requests per drain measured here). Instead: stop accepting, answer every
// further request with `Connection: close`, close a socket left idle only after a grace
// period, and cut what is left at the drain timeout.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

export interface DrainResult {
  /** True when the drain timeout passed and open connections were cut. */
  forced: boolean;
  /** Milliseconds from the start of the drain until every connection was closed. */
  ms: number;
  /** The signal that started the drain, if one did. */
  signal?: NodeJS.Signals;
}

export interface DrainOptions {
  graceMs: number;
  timeoutMs: number;
}

interface Conn {
  /** Requests received and not yet answered in full (pipelined ones count too). */
  inflight: Set<http.ServerResponse>;
  idleSince: number;
  bytesAtIdle: number;
}

export class Drainer {
  private all = new Set<net.Socket>();
  private conns = new Map<net.Socket, Conn>();
  private startedAt = 0;
  private result: Promise<DrainResult> | undefined;
  private forceNow: (() => void) | undefined;
  private readonly http: boolean;

  constructor(private server: net.Server, private opts: DrainOptions) {
    this.http = server instanceof http.Server || server instanceof https.Server;
    server.on('connection', (s: net.Socket) => {
      this.all.add(s);
      s.once('close', () => this.all.delete(s));
    });
    if (!this.http) return;
    // The socket requests arrive on: the TLS one for https, the TCP one for http.
    server.on(server instanceof https.Server ? 'secureConnection' : 'connection', (s: net.Socket) => {
      this.conns.set(s, { inflight: new Set(), idleSince: Date.now(), bytesAtIdle: s.bytesRead });
      s.once('close', () => this.conns.delete(s));
    });
    // Prepended, so the header is set before the app's handler writes anything.
    server.prependListener('request', (req: http.IncomingMessage, res: http.ServerResponse) => this.onRequest(req, res));
  }

  get draining(): boolean {
    return this.result !== undefined;
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const conn = this.conns.get(req.socket);
    if (this.draining) res.setHeader('connection', 'close');
    if (!conn) return;
    conn.inflight.add(res);
    res.once('close', () => {
      conn.inflight.delete(res);
      if (conn.inflight.size > 0) return;
      conn.idleSince = Date.now();
      conn.bytesAtIdle = req.socket.bytesRead;
    });
  }

  /** Starts draining (once; later calls get the same result) and resolves when it is done. */
  drain(signal?: NodeJS.Signals): Promise<DrainResult> {
    this.result ??= new Promise((resolve) => {
      this.startedAt = Date.now();
      let forced = false;
      // Responses not yet begun close their connection when they are done.
      for (const conn of this.conns.values()) {
        for (const res of conn.inflight) if (!res.headersSent) res.setHeader('connection', 'close');
      }
      const { graceMs, timeoutMs } = this.opts;
      const tick = this.http ? setInterval(() => this.closeIdle(), Math.max(10, Math.min(100, graceMs / 4))) : undefined;
      const force = (): void => {
        forced = this.all.size > 0;
        for (const s of this.all) s.destroy();
      };
      const deadline = setTimeout(force, timeoutMs);
      this.forceNow = force;
      // net.Server's close, not http.Server's: that one would close idle sockets at once.
      // Its callback runs once the last connection has closed.
      net.Server.prototype.close.call(this.server, () => {
        clearInterval(tick);
        clearTimeout(deadline);
        resolve({ forced, ms: Date.now() - this.startedAt, ...(signal ? { signal } : {}) });
      });
      if (this.http) this.closeIdle();
    });
    return this.result;
  }

  /** Cuts every open connection now (a second signal, or the drain timeout). */
  force(): void {
    this.forceNow?.();
  }

  /**
   * A socket is closed once it has been idle for the grace period counted from the later of
   * the drain's start and its last response, and no byte has arrived since: a client may be
   * sending on it right now, and that request gets an answer with `Connection: close`.
   */
  private closeIdle(): void {
    const now = Date.now();
    for (const [s, conn] of this.conns) {
      if (conn.inflight.size > 0 || s.bytesRead !== conn.bytesAtIdle) continue;
      // Node frees the parser of a socket it handed to an 'upgrade' handler (a WebSocket):
      // that is no idle HTTP connection, and waits for the drain timeout like any other.
      if ((s as net.Socket & { parser?: unknown }).parser == null) continue;
      if (now - Math.max(conn.idleSince, this.startedAt) >= this.opts.graceMs) s.destroy();
    }
  }
}
