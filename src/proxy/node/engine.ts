// L7 on public APIs only: Node's http server faces clients (keep-alive, parsing, limits) and
// Node's http client, with a keep-alive agent per backend instance, faces the backends
// (http-forward.ts). Routing is per request, so a deploy never touches a client connection.
// The raw engine is faster; this one is what runs where Node's internals are missing.
import http from 'node:http';
import net, { type BlockList } from 'node:net';
import type { Logger } from '../../log.js';
import type { Target, WorkerConfig } from '../../ipc.js';
import { trustList } from '../../options.js';
import { LISTEN_BACKLOG, UPSTREAM_IDLE_MS, type Engine, type HandOff } from '../engine.js';
import { Handover } from './handover.js';
import { forward, upstreamFields } from './forward.js';
import { connectWaitingForBacklog } from './connect.js';
import { answerHalfClosed } from '../../internals/index.js';
import type { Inflight } from '../inflight.js';
import type { Router } from '../router.js';
import { MAX_HEADER_FIELDS, REQ_BODY, isWebSocket, peerOf, requestFields, stripV4Mapped, type RequestOut } from '../headers.js';
import type { AccessEntry } from '../access-line.js';
import type { AccessLog } from '../access-log.js';
import { traffic } from '../../metrics/traffic.js';
import { afterFailure, backlogDelayMs, bodyFor, isBacklogFull, statusFor } from '../failure.js';
import { Tunnels } from '../tunnels.js';
import { place } from '../canary.js';
import { waitUntil } from '../wait-until.js';
import { openUpgradeTunnel } from '../upgrade-tunnel.js';
import { responseComplete, responseGone } from '../tls/h2-request.js';
import { CONNECTIONS_HANDED_OVER } from '../../messages.js';
import { h1Fields } from '../tls/h2-request.js';
import type { EdgeAnswers } from '../edge.js';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
/** On stop, how long keep-alive clients get to see a `Connection: close` before idle ones are closed. */
export const STOP_GRACE_MS = 1_000;

interface Upstream {
  gen: number;
  agent: http.Agent;
  /** Exchanges that may leave for another instance if this one leaves rotation. */
  pending: Set<() => void>;
}

/** For /metrics: the generation that answered, or that the proxy answered for itself. */
type Tracked = http.ServerResponse & { gen?: number; proxyMade?: boolean };

/** One client request across its attempts: what goes upstream is worked out once. */
interface Job extends RequestOut {
  fields: string[];
  retryable: boolean;
  /** Its access-log line, when there is an access log. */
  entry: AccessEntry | null;
  /** During a canary: this client is on the canary's side, and is told so by this Set-Cookie. */
  toCanary?: boolean;
  setCookie?: string;
}

export class HttpEngine implements Engine {
  protected servers: http.Server[] = [];
  /** What the clients of this engine speak, for X-Forwarded-Proto. */
  protected proto: 'http' | 'https' = 'http';
  /** Answers the proxy gives itself on plain listeners: ACME challenges, redirects to https. */
  edge: EdgeAnswers | undefined;
  private upstreams = new Map<string, Upstream>();
  protected tunnels: Tunnels;
  private handover: Handover;
  private trusted: BlockList | undefined;
  stopping = false;

  constructor(readonly router: Router, readonly inflight: Inflight, readonly cfg: WorkerConfig, readonly log: Logger,
    readonly accessLog: AccessLog | null = null) {
    this.tunnels = new Tunnels(inflight);
    this.handover = new Handover(this.servers);
    this.trusted = cfg.trustProxy.length ? trustList(cfg.trustProxy) : undefined;
  }

  listen(fd: number): Promise<void> {
    // No Host required and no Date added: the backend decides both, as with the raw engine.
    const server = http.createServer(this.serverOptions());
    this.attach(server);
    this.handover.track(server);
    return listenOn(server, fd);
  }

  /** What Node's http server is told, over TLS too. */
  protected serverOptions(): http.ServerOptions {
    const { headerTimeoutMs, keepAliveTimeoutMs } = this.cfg;
    // Node checks header timeouts every 30 s by default: far too coarse for a short one.
    const connectionsCheckingInterval = Math.max(50, Math.min(1_000, Math.floor(headerTimeoutMs / 4)));
    return { connectionsCheckingInterval, headersTimeout: headerTimeoutMs, keepAliveTimeout: keepAliveTimeoutMs, requireHostHeader: false };
  }

  /** This engine serves `server`'s requests (it listens elsewhere). */
  protected attach(server: http.Server): void {
    answerHalfClosed(server);
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => this.request(req, res));
    // An Expect: 100-continue goes to the backend, whose 100 (or refusal) is relayed.
    server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => this.request(req, res));
    // What Node answers itself to any other expectation, here so that the access log sees it.
    server.on('checkExpectation', (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (this.accessLog !== null) this.logWhenClosed(res, this.entry(req, process.hrtime.bigint(), this.job(req)));
      res.writeHead(417).end();
    });
    server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      if (!isWebSocket(req.rawHeaders) && req.method !== 'CONNECT' && !hasBody(req)) { this.plainUpgrade(req, socket); return; }
      this.handover.forget(socket);
      this.upgrade(req, socket, head);
    });
    this.servers.push(server);
  }

  /** Whether the client connection closes after this answer: HTTP/2 streams never say so (GOAWAY does). */
  protected closes(req: http.IncomingMessage): boolean {
    return this.stopping && req.httpVersionMajor !== 2;
  }

  request(req: http.IncomingMessage, res: http.ServerResponse): void {
    // A request pipelined behind an unfinished answer goes to a backend once its own answer owns
    // the socket (as HAProxy takes them one at a time): Node's server puts a queued answer's head
    // before a 1xx written earlier, and refuses a 1xx after the head on Node 26.
    if (res.socket === null && req.httpVersionMajor !== 2) { res.once('socket', () => this.request(req, res)); return; }
    if (req.rawHeaders.length > MAX_HEADER_FIELDS * 2) {
      res.writeHead(431, { ...(req.httpVersionMajor === 2 ? {} : { connection: 'close' }), 'content-length': 0 }).end();
      return;
    }
    if (this.edge !== undefined && this.edge.answer(req, res)) return;
    res.sendDate = false;
    const t0 = process.hrtime.bigint();
    const r = res as Tracked;
    res.once('finish', () => (r.proxyMade ? traffic.proxyAnswer(r.gen ?? 0, res.statusCode, t0) : traffic.record(r.gen ?? 0, res.statusCode, t0)));
    const job = this.job(req);
    if (this.accessLog !== null) this.logWhenClosed(res, (job.entry = this.entry(req, t0, job)));
    this.route(req, res, job, 1);
  }

  /** The request's fields for the backend, its ID among them, made once for all its attempts. */
  private job(req: http.IncomingMessage): Job {
    const job: Job = { flags: 0, keepAliveHeader: undefined, requestId: '', userAgent: undefined, fields: [], retryable: false, entry: null };
    const raw = req.httpVersionMajor === 2 ? h1Fields(req) : req.rawHeaders;
    job.fields = upstreamFields(req, peerOf(req.socket.remoteAddress, this.trusted, this.proto), job, raw);
    job.retryable = (job.flags & REQ_BODY) === 0 && IDEMPOTENT.has(req.method!);
    return job;
  }

  private entry(req: http.IncomingMessage, t0: bigint, out: RequestOut): AccessEntry {
    return {
      method: req.method!, url: req.url!, status: 0, bytes: 0, t0, ttfb: 0n, gen: 0, pid: 0, tries: 0,
      client: stripV4Mapped(req.socket.remoteAddress ?? ''), requestId: out.requestId, userAgent: out.userAgent, cut: undefined,
    };
  }

  /** The line is written when the exchange is over, however it ended. */
  private logWhenClosed(res: http.ServerResponse, e: AccessEntry): void {
    res.once('close', () => {
      e.status = res.headersSent ? res.statusCode : 0;
      if (!responseComplete(res)) e.cut ??= 'client';
      this.accessLog!.record(e);
    });
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse, job: Job, attempt: number): void {
    // A canary runs: which side this client is on (by its cookie, else its address).
    const c = this.router.canary;
    if (c !== undefined) {
      const cookie = req.headers.cookie;
      const p = place(c, cookie === undefined ? [] : [cookie], req.socket.remoteAddress);
      job.toCanary = p.toCanary;
      job.setCookie = p.setCookie;
    }
    const target = this.router.pick(job.toCanary);
    if (target !== undefined) return this.forward(req, res, job, target, attempt);
    this.router.wait(this.cfg.queueTimeoutMs, job.toCanary).then(
      (t) => this.forward(req, res, job, t, attempt),
      (err) => this.fail(res, err, job.entry),
    );
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse, job: Job, target: Target, attempt: number): void {
    if (responseGone(res)) return;
    const { retryable, entry } = job;
    this.inflight.inc(target.gen);
    (res as Tracked).gen = target.gen;
    if (entry !== null) { entry.gen = target.gen; entry.pid = target.pid; entry.tries++; entry.ttfb = 0n; }
    forward({
      agent: (t) => this.upstream(t).agent,
      closing: () => this.closes(req),
      setCookie: job.setCookie,
      done: (t) => this.inflight.dec(t.gen),
      timeoutMs: this.cfg.backendTimeoutMs,
      resendable: retryable,
      track: (t, abandon) => {
        const pending = this.upstream(t).pending;
        pending.add(abandon);
        return () => pending.delete(abandon);
      },
      stalled: (t) => this.router.markDown(t, 'timeout'),
      failed: (err, t) => {
        const again = afterFailure(this.router, t, err, attempt, retryable && !responseGone(res));
        if (again === 'route' && isBacklogFull(err)) { setTimeout(() => this.route(req, res, job, attempt + 1), backlogDelayMs(attempt)); return; }
        if (again === 'route') { this.route(req, res, job, attempt + 1); return; }
        if (again !== undefined) { this.forward(req, res, job, again, attempt + 1); return; }
        if (!responseGone(res)) this.fail(res, err, entry, t);
      },
    }, req, res, target, job.fields, job.flags, entry);
  }

  /**
   * An Upgrade other than WebSocket (h2c, TLS/1.0) is a hop-by-hop offer the proxy declines:
   * the request is answered as plain HTTP/1.1. Node's server has let go of the socket by
   * now, so this response closes it. (One with a body is still tunnelled: Node has stopped
   * parsing at the head.)
   */
  private plainUpgrade(req: http.IncomingMessage, socket: net.Socket): void {
    const res = new http.ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket);
    res.once('finish', () => socket.end());
    this.request(req, res);
  }

  fail(res: http.ServerResponse, err: unknown, entry: AccessEntry | null, target?: Target): void {
    if (res.headersSent) { if (entry !== null) entry.cut = 'backend'; res.destroy(); return; }
    const status = statusFor(err);
    this.log.warn({ status, err: (err as Error).message, code: (err as { code?: string }).code, target: target?.id }, 'Proxy error');
    (res as Tracked).proxyMade = true;
    const body = bodyFor(status);
    if (entry !== null) entry.bytes = res.req.method === 'HEAD' ? 0 : Buffer.byteLength(body);
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), ...(this.closes(res.req) ? { connection: 'close' } : {}) });
    res.end(body);
  }

  private upstream(target: Target): Upstream {
    let u = this.upstreams.get(target.id);
    if (u === undefined) {
      // One request per connection at a time; idle ones are dropped after a second, before
      // backends that close idle connections early (gunicorn: 2 s) race a request sent on them.
      const agent = new http.Agent({ keepAlive: true, timeout: UPSTREAM_IDLE_MS, scheduling: 'lifo' });
      (agent as unknown as { createConnection: typeof connectWaitingForBacklog }).createConnection = connectWaitingForBacklog;
      this.upstreams.set(target.id, (u = { gen: target.gen, agent, pending: new Set() }));
    }
    return u;
  }

  /** A WebSocket upgrade: the connection becomes a tunnel to the backend. */
  private upgrade(req: http.IncomingMessage, client: net.Socket, head: Buffer): void {
    const t0 = process.hrtime.bigint();
    // The handshake's fields for the backend, Connection/Upgrade kept; the same for each try.
    const out: RequestOut = { flags: 0, keepAliveHeader: undefined, requestId: '', userAgent: undefined };
    const h = requestFields(req.rawHeaders, peerOf(req.socket.remoteAddress, this.trusted, this.proto), true, out, []);
    let text = `${req.method} ${req.url} HTTP/1.1\r\n`;
    for (let i = 0; i < h.length; i += 2) text += `${h[i]}: ${h[i + 1]}\r\n`;
    text += '\r\n';
    const ctx = { router: this.router, inflight: this.inflight, tunnels: this.tunnels, queueTimeoutMs: this.cfg.queueTimeoutMs, accessLog: this.accessLog };
    openUpgradeTunnel(ctx, client, (upstream) => {
      upstream.write(text);
      if (head.length) upstream.write(head);
    }, this.accessLog === null ? null : this.entry(req, t0, out));
  }

  forget(alive: Set<string>, gen: number | null): void {
    // Instances of the active generation that left the route (they crashed, or failed their
    // health checks): what can go elsewhere does. Older generations are closed by drain().
    for (const [id, u] of this.upstreams) {
      if (u.gen !== gen || alive.has(id)) continue;
      this.upstreams.delete(id);
      for (const abandon of [...u.pending]) abandon();
      // Idle connections only: answers still coming from it finish (or time out).
      for (const list of Object.values(u.agent.freeSockets)) for (const s of list ?? []) s.destroy();
    }
  }

  async drain(gen: number): Promise<void> {
    await this.inflight.whenIdle(gen);
    for (const [id, u] of this.upstreams) {
      if (u.gen !== gen) continue;
      this.upstreams.delete(id);
      u.agent.destroy();
    }
  }

  cut(gen: number): void {
    this.tunnels.cut(gen);
    for (const [id, u] of this.upstreams) {
      if (u.gen !== gen) continue;
      this.upstreams.delete(id);
      u.agent.destroy();
    }
  }

  async connections(): Promise<number> {
    return this.handover.size + this.tunnels.size;
  }

  adopt(handle: unknown): void {
    this.handover.adopt(handle, this.cfg.keepAliveTimeoutMs);
  }

  async retire(timeoutMs: number, handOff: HandOff): Promise<void> {
    // Without hand-over, connections close as they do on stop, but idle ones are left to the
    // client until the deadline: each answer says Connection: close, so they go one by one.
    if (!this.handover.supported()) return this.stop(timeoutMs, timeoutMs);
    // Stop accepting; the listener stays open in the master and the new workers.
    for (const s of this.servers) net.Server.prototype.close.call(s);
    const deadline = Date.now() + timeoutMs;
    const left = await this.handover.retire(handOff, timeoutMs);
    this.log.info({ handedOver: this.handover.handed, left }, CONNECTIONS_HANDED_OVER);
    // What could not move (tunnels, requests still running) finishes here or is cut.
    await waitUntil(() => this.handover.size === 0 && this.inflight.total() === 0, Math.max(0, deadline - Date.now()));
    await this.stop(0);
  }

  /** `graceMs`: how long idle keep-alive connections are left open for their client. */
  async stop(timeoutMs: number, graceMs = STOP_GRACE_MS): Promise<void> {
    this.stopping = true;
    // Stop accepting only: http.Server#close would also close idle keep-alive connections at
    // once, racing clients that are sending on them.
    for (const s of this.servers) net.Server.prototype.close.call(s);
    const deadline = Date.now() + timeoutMs;
    // The whole grace period, not until nothing is in flight: at that moment every connection
    // may merely be between requests. Any request meanwhile is answered with Connection: close,
    // so what is idle afterwards has been quiet for the whole period.
    await waitUntil(() => this.handover.size === 0, Math.min(graceMs, timeoutMs));
    for (const s of this.servers) s.closeIdleConnections();
    await waitUntil(() => this.inflight.total() === 0, Math.max(0, deadline - Date.now()));
    this.router.close();
    this.tunnels.cutAll();
    for (const s of this.servers) s.closeAllConnections();
    for (const u of this.upstreams.values()) u.agent.destroy();
    this.upstreams.clear();
  }
}

export function listenOn(server: net.Server, fd: number): Promise<void> {
  return new Promise((resolve, reject) => server.once('error', reject).listen({ fd }, LISTEN_BACKLOG, resolve));
}

function hasBody(req: http.IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return (len !== undefined && len !== '0') || req.headers['transfer-encoding'] !== undefined;
}
