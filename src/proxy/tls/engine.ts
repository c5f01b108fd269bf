// TLS termination: the node engine's exchange over TLS, HTTP/1.1 and HTTP/2 by ALPN. Node's
// https server takes the handshake (SNI picks the certificate) and serves HTTP/1.1 as the
// plain server does; a connection that chose h2 goes to an HTTP/2 session instead, whose
// streams become requests of the same engine (Node's compatibility API) and so go to the
// backends as HTTP/1.1 through the same pools, retries, limits and access log.
//
// A TLS connection cannot be handed to another process (its keys live here), so a retiring
// worker finishes its own: HTTP/2 sessions with a graceful GOAWAY (sessions.ts), HTTP/1.1
// with Connection: close on the next answer; an idle one is kept until the client sends on
// it or the keep-alive timeout closes it, and only the retire deadline cuts what is left.
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import type tls from 'node:tls';
import type { CertPair, WorkerConfig } from '../../ipc.js';
import type { Logger } from '../../log.js';
import type { AccessLog } from '../access-log.js';
import type { HandOff } from '../engine.js';
import type { Inflight } from '../inflight.js';
import type { Router } from '../router.js';
import { HttpEngine, listenOn, STOP_GRACE_MS } from '../node/engine.js';
import { waitUntil } from '../wait-until.js';
import { Contexts } from './contexts.js';
import { h2Options, Sessions } from './sessions.js';
import { TLS_FINISHED } from '../../messages.js';
import { parseFromStream } from '../../internals/index.js';

export class TlsEngine extends HttpEngine {
  private contexts = new Contexts();
  private h2: http2.Http2Server;
  private sessions: Sessions;
  /** HTTP/1.1 connections over TLS. */
  private h1 = new Set<tls.TLSSocket>();
  /**
   * Every accepted TCP connection until it closes, its handshake too: one that is still
   * handshaking when a retire looks is neither h1 nor a session yet, and becomes one after.
   */
  private accepted = new Set<net.Socket>();
  private retiring = false;

  constructor(router: Router, inflight: Inflight, cfg: WorkerConfig, log: Logger, accessLog: AccessLog | null) {
    super(router, inflight, cfg, log, accessLog);
    this.proto = 'https';
    this.sessions = new Sessions(log, cfg.keepAliveTimeoutMs);
    // Never listens: sessions are started on sockets the https servers handshook.
    this.h2 = http2.createServer(h2Options(), (req, res) => this.request(req as unknown as http.IncomingMessage, res as unknown as http.ServerResponse));
    // As on HTTP/1.1: the backend answers an Expect: 100-continue (Node would send 100 itself).
    this.h2.on('checkContinue', (req, res) => this.request(req as unknown as http.IncomingMessage, res as unknown as http.ServerResponse));
    this.h2.on('session', (s) => this.sessions.add(s));
  }

  setCerts(pairs: CertPair[]): void {
    this.contexts.set(pairs);
    // Clients that send no name (an IP address) get the first pair.
    for (const s of this.servers) (s as unknown as tls.Server).setSecureContext(this.contexts.defaults());
  }

  override listen(fd: number): Promise<void> {
    const server = https.createServer({
      ...this.serverOptions(),
      ...this.contexts.defaults(),
      ALPNProtocols: ['h2', 'http/1.1'],
      SNICallback: (name, cb) => cb(null, this.contexts.pick(name)),
    });
    this.attach(server);
    server.on('connection', (socket: net.Socket) => {
      this.accepted.add(socket);
      socket.once('close', () => this.accepted.delete(socket));
    });
    // Node's https server serves every connection as HTTP/1.1; those that chose h2 go to the session server.
    const serveH1 = server.listeners('secureConnection')[0] as (s: tls.TLSSocket) => void;
    server.removeAllListeners('secureConnection');
    server.on('secureConnection', (socket: tls.TLSSocket) => {
      if (socket.alpnProtocol === 'h2') { this.h2.emit('connection', socket); return; }
      this.h1.add(socket);
      socket.once('close', () => this.h1.delete(socket));
      // Pipelined requests would otherwise fail the connection (internals/tls-parse.ts).
      parseFromStream(socket);
      serveH1.call(server, socket);
    });
    // A failed handshake is the client's (or a scanner's) business, not an error of ours.
    server.on('tlsClientError', (_err, socket) => socket.destroy());
    return listenOn(server, fd);
  }

  /** The port of the first TLS listener, where plain requests are redirected to. */
  port(): number | undefined {
    const a = this.servers[0]?.address();
    return typeof a === 'object' && a !== null ? a.port : undefined;
  }

  protected override closes(req: http.IncomingMessage): boolean {
    return (this.stopping || this.retiring) && req.httpVersionMajor !== 2;
  }

  override async connections(): Promise<number> {
    return Math.max(this.accepted.size, this.h1.size + this.sessions.size) + this.tunnels.size;
  }

  /** A TLS connection is never adopted: it cannot be handed over. */
  override adopt(): void {}

  override async retire(timeoutMs: number, _handOff: HandOff): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.retiring = true;
    for (const s of this.servers) net.Server.prototype.close.call(s);
    this.sessions.endAll();
    await waitUntil(() => this.accepted.size === 0 && this.h1.size === 0 && this.sessions.size === 0 && this.tunnels.size === 0, timeoutMs);
    this.log.info({ left: await this.connections() }, TLS_FINISHED);
    await this.stop(Math.max(0, deadline - Date.now()), 0);
  }

  override async stop(timeoutMs: number, graceMs = STOP_GRACE_MS): Promise<void> {
    this.stopping = true;
    this.sessions.endAll();
    // As on a plain listener: keep-alive clients get a moment to see Connection: close.
    const deadline = Date.now() + timeoutMs;
    await waitUntil(() => this.h1.size === 0, Math.min(graceMs, timeoutMs));
    await super.stop(Math.max(0, deadline - Date.now()), 0);
    // Nothing is in flight to a backend now, but an HTTP/2 stream may still hold the tail of
    // its answer for a slow reader (flow control): it closes once the client has it all.
    await waitUntil(() => this.sessions.streams() === 0, Math.max(0, deadline - Date.now()));
    this.sessions.destroyAll();
  }
}
