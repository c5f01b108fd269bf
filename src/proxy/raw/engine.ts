// L7 without Node's http server or client: `net` sockets on both sides and Node's
// native llhttp parser (raw-parser.ts). Client connections: raw-client-conn.ts; upstream pools:
// raw-upstream.ts. Same contract as HttpEngine: per-request routing, in-flight counts per
// generation, retries of idempotent bodiless requests, WebSocket tunnels, and hand-over of
// keep-alive connections at request boundaries (known exactly here: the parser is ours).
import type { EdgeAnswers } from '../edge.js';
import net, { type BlockList } from 'node:net';
import type { Logger } from '../../log.js';
import type { Target, WorkerConfig } from '../../ipc.js';
import { trustList } from '../../options.js';
import { LISTEN_BACKLOG, type Engine, type HandOff } from '../engine.js';
import type { Inflight } from '../inflight.js';
import { ClientConn } from './client-conn.js';
import type { ClientInput } from './client-input.js';
import { IdleConn } from './idle-conn.js';
import { traffic } from '../../metrics/traffic.js';
import { UpstreamPool } from './upstream.js';
import type { Router } from '../router.js';
import { Tunnels } from '../tunnels.js';
import { waitUntil } from '../wait-until.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { openUpgradeTunnel } from '../upgrade-tunnel.js';
import { has, releaseMemory, socketFromHandle, wear } from '../../internals/index.js';
import { CONNECTIONS_HANDED_OVER, MEMORY_RELEASED } from '../../messages.js';
import type { AccessEntry } from '../access-line.js';
import type { AccessLog } from '../access-log.js';

/** On stop, how long keep-alive clients get to see a `Connection: close` before idle ones are closed. */
const STOP_GRACE_MS = 1_000;
const SWEEP_MS = 25;
/**
 * A keep-alive connection idle this long is held as its bare handle (IdleConn): long enough
 * that one in use between requests is not shed and rebuilt over and over.
 */
const SHED_AFTER_MS = 1_000;
/**
 * Shed connections leave their sockets' memory in V8's heap until it gives pages back, which a
 * worker may never get to (internals/memory.ts). Once this many were shed and the shedding is
 * over, the worker asks for it at the first sweep that finds it quiet (nothing answered since
 * the last sweep, nothing in flight), so the pause (tens of milliseconds for 10,000
 * connections on Node 26; logged) falls where no request waits for it.
 */
const RELEASE_AFTER_SHED = 1_000;

type Conn = ClientInput | IdleConn;

export class RawEngine implements Engine {
  private servers: net.Server[] = [];
  private conns = new Set<Conn>();
  private idle = 0;
  private shedSinceRelease = 0;
  private answeredBefore = 0;
  private pools = new Map<string, UpstreamPool>();
  private tunnels: Tunnels;
  readonly trusted: BlockList | undefined;
  /** With TLS on: the ACME challenges this listener answers itself. */
  edge: EdgeAnswers | undefined;
  private timer: NodeJS.Timeout;
  private headLimit: number;
  private idleLimit: number;
  private silentLimit: number;
  readonly shedTicks: number;
  private readonly period: number;
  private handOff: HandOff | undefined;
  private moving = 0;
  private handed = 0;
  stopping = false;

  constructor(readonly router: Router, readonly inflight: Inflight, readonly cfg: WorkerConfig, readonly log: Logger,
    readonly accessLog: AccessLog | null = null) {
    this.tunnels = new Tunnels(inflight);
    this.trusted = cfg.trustProxy.length ? trustList(cfg.trustProxy) : undefined;
    // One coarse timer for header, idle keep-alive, idle upstream and backend timeouts.
    this.period = Math.max(50, Math.min(250, Math.floor(Math.min(cfg.headerTimeoutMs, cfg.keepAliveTimeoutMs, cfg.backendTimeoutMs) / 4)));
    // One tick more than the timeout spans: the first one may come right after the start, and
    // a timeout must not fire early (it fires up to one period late).
    this.headLimit = Math.ceil(cfg.headerTimeoutMs / this.period) + 1;
    this.idleLimit = Math.ceil(cfg.keepAliveTimeoutMs / this.period) + 1;
    this.silentLimit = Math.ceil(cfg.backendTimeoutMs / this.period) + 1;
    this.shedTicks = Math.ceil(SHED_AFTER_MS / this.period) + 1;
    this.timer = setInterval(() => this.sweep(), this.period).unref();
  }

  listen(fd: number): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => this.accept(s, true));
    this.servers.push(server);
    return new Promise((resolve, reject) => server.once('error', reject).listen({ fd }, LISTEN_BACKLOG, resolve));
  }

  /** `fresh`: accepted here (its request head is due), not handed over idle. */
  private accept(socket: net.Socket, fresh: boolean): void {
    this.conns.add(new ClientConn(this, socket, fresh));
  }

  pool(target: Target): UpstreamPool {
    let p = this.pools.get(target.id);
    if (p === undefined) this.pools.set(target.id, (p = new UpstreamPool(target, this.cfg.backendTimeoutMs)));
    return p;
  }

  /** A connection closed or became a tunnel. */
  detach(c: Conn): void {
    if (this.conns.delete(c) && c instanceof IdleConn) this.idle--;
  }

  /** `c` has been idle for a while: it is kept as its bare handle from now on, if it can be. */
  shed(c: ClientInput): void {
    if (this.stopping || this.handOff !== undefined || !c.sheddable()) return;
    const socket = c.socket;
    c.shedInput();
    this.conns.delete(c);
    this.conns.add(new IdleConn(this, socket, c.idleFor));
    this.idle++;
    this.shedSinceRelease++;
  }

  /** An idle connection's next bytes: a socket and an exchange over its handle again, which parse them. */
  wake(idle: IdleConn, chunk: Buffer): void {
    this.detach(idle);
    const c = new ClientConn(this, wear(idle.handle), false);
    this.conns.add(c);
    c.feed(chunk);
  }

  private releaseMemory(): void {
    const shed = this.shedSinceRelease;
    this.shedSinceRelease = 0;
    const ms = releaseMemory();
    if (ms > 0) this.log.info({ shed, idle: this.idle, ms: Math.round(ms) }, MEMORY_RELEASED);
  }

  /** Idle connections held as bare handles. */
  idleConnections(): number {
    return this.idle;
  }

  get handingOff(): boolean {
    return this.handOff !== undefined;
  }

  private sweep(): void {
    const shedBefore = this.shedSinceRelease;
    for (const c of this.conns) c.tick(this.headLimit, this.idleLimit);
    const answered = traffic.answered;
    const quiet = answered === this.answeredBefore && this.inflight.total() === 0;
    this.answeredBefore = answered;
    if (quiet && this.shedSinceRelease >= RELEASE_AFTER_SHED && this.shedSinceRelease === shedBefore) this.releaseMemory();
    const now = Date.now();
    for (const p of this.pools.values()) p.sweep(now, this.silentLimit);
  }

  /** A WebSocket upgrade: the connection becomes a tunnel to the backend. `entry`: its access-log line's. */
  upgrade(client: net.Socket, head: string, rest: Buffer | null, entry: AccessEntry | null): void {
    const ctx = { router: this.router, inflight: this.inflight, tunnels: this.tunnels, queueTimeoutMs: this.cfg.queueTimeoutMs, accessLog: this.accessLog };
    openUpgradeTunnel(ctx, client, (upstream) => {
      upstream.write(head, 'latin1');
      if (rest !== null && rest.length > 0) upstream.write(rest);
    }, entry);
  }

  forget(alive: Set<string>, gen: number | null): void {
    // Instances of the active generation that left the route (they crashed, or failed their
    // health checks): what can go elsewhere does, the rest finishes or times out. Older
    // generations are closed by drain().
    for (const [id, p] of this.pools) {
      if (p.target.gen === gen && !alive.has(id)) { this.pools.delete(id); p.abandon(); p.close(); }
    }
  }

  async drain(gen: number): Promise<void> {
    await this.inflight.whenIdle(gen);
    for (const [id, p] of this.pools) {
      if (p.target.gen === gen) { this.pools.delete(id); p.close(); }
    }
  }

  cut(gen: number): void {
    this.tunnels.cut(gen);
    for (const [id, p] of this.pools) {
      if (p.target.gen === gen) { this.pools.delete(id); p.destroy(); }
    }
  }

  async connections(): Promise<number> {
    return this.conns.size + this.tunnels.size;
  }

  adopt(handle: unknown): void {
    this.accept(socketFromHandle(handle), false);
  }

  /**
   * Hands `c` over if it is at a request boundary. The check and the stop of reading happen in
   * the same tick; whatever the client sends afterwards waits in the kernel and moves with the fd.
   */
  offer(c: Conn): void {
    const handOff = this.handOff;
    if (handOff === undefined || c.moving || !c.atBoundary()) return;
    const frozen = c.freeze();
    if (frozen === null) return;
    c.moving = true;
    this.moving++;
    handOff(frozen.handle).then(
      () => { this.handed++; this.moving--; c.destroy(); },
      () => { this.moving--; c.moving = false; frozen.thaw(); },
    );
  }

  async retire(timeoutMs: number, handOff: HandOff): Promise<void> {
    // Without hand-over, connections close as they do on stop, but idle ones are left to the
    // client until the deadline: each answer says Connection: close, so they go one by one.
    if (!has('handover')) return this.stop(timeoutMs, timeoutMs);
    // Stop accepting; the listener stays open in the master and the new workers.
    for (const s of this.servers) s.close();
    const deadline = Date.now() + timeoutMs;
    this.handOff = handOff;
    // Idle connections move now; busy ones when their exchange ends (ClientConn calls offer()).
    while (Date.now() < deadline) {
      for (const c of this.conns) this.offer(c);
      if (this.conns.size === 0 || (this.moving === 0 && [...this.conns].every((c) => c.moving))) break;
      await sleep(SWEEP_MS);
    }
    while (this.moving > 0 && Date.now() < deadline) await sleep(SWEEP_MS);
    this.log.info({ handedOver: this.handed, left: this.conns.size + this.tunnels.size }, CONNECTIONS_HANDED_OVER);
    // What could not move (tunnels, requests still running) finishes here or is cut.
    await waitUntil(() => this.conns.size === 0 && this.tunnels.size === 0 && this.inflight.total() === 0, Math.max(0, deadline - Date.now()));
    await this.stop(0);
  }

  /** `graceMs`: how long idle keep-alive connections are left open for their client. */
  async stop(timeoutMs: number, graceMs = STOP_GRACE_MS): Promise<void> {
    this.stopping = true;
    for (const s of this.servers) s.close();
    // Busy connections close after a response that says Connection: close. Idle ones are
    // closed by the sweep once quiet for the grace period — never at a moment when every
    // connection merely happens to be between requests, with the next one on its way.
    this.idleLimit = Math.min(this.idleLimit, Math.ceil(graceMs / this.period) + 1);
    await waitUntil(() => this.inflight.total() === 0 && this.conns.size === 0, timeoutMs);
    this.router.close();
    this.tunnels.cutAll();
    for (const c of [...this.conns]) c.destroy();
    for (const p of this.pools.values()) p.destroy();
    this.pools.clear();
    clearInterval(this.timer);
  }
}
