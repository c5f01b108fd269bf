// L7 without Node's http server or client: `net` sockets on both sides and Node's
// native llhttp parser (raw-parser.ts). Client connections: raw-client-conn.ts; upstream pools:
// raw-upstream.ts. Same contract as HttpEngine: per-request routing, in-flight counts per
// generation, retries of idempotent bodiless requests, WebSocket tunnels, and hand-over of
// keep-alive connections at request boundaries (known exactly here: the parser is ours).
import net, { type BlockList } from 'node:net';
import type { Logger } from '../log.js';
import type { Target, WorkerConfig } from '../ipc.js';
import { trustList } from '../options.js';
import type { Engine, HandOff } from './engine.js';
import type { Inflight } from './inflight.js';
import { ClientConn } from './raw-client-conn.js';
import type { ClientInput } from './raw-client-input.js';
import { UpstreamPool } from './raw-upstream.js';
import type { Router } from './router.js';
import { Tunnels } from './tunnels.js';
import { waitUntil } from './wait-until.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { openUpgradeTunnel } from './upgrade-tunnel.js';

/** On stop, how long keep-alive clients get to see a `Connection: close` before idle ones are closed. */
const STOP_GRACE_MS = 1_000;
const SWEEP_MS = 25;

interface StreamHandle {
  readStop(): number;
  readStart(): number;
}

export class RawEngine implements Engine {
  private servers: net.Server[] = [];
  private conns = new Set<ClientInput>();
  private pools = new Map<string, UpstreamPool>();
  private tunnels: Tunnels;
  readonly trusted: BlockList | undefined;
  private timer: NodeJS.Timeout;
  private headLimit: number;
  private idleLimit: number;
  private readonly period: number;
  private handOff: HandOff | undefined;
  private moving = 0;
  private handed = 0;
  stopping = false;

  constructor(readonly router: Router, readonly inflight: Inflight, readonly cfg: WorkerConfig, readonly log: Logger) {
    this.tunnels = new Tunnels(inflight);
    this.trusted = cfg.trustProxy.length ? trustList(cfg.trustProxy) : undefined;
    // One coarse timer for header, idle keep-alive and idle upstream timeouts.
    this.period = Math.max(50, Math.min(250, Math.floor(Math.min(cfg.headerTimeoutMs, cfg.keepAliveTimeoutMs) / 4)));
    // One tick more than the timeout spans: the first one may come right after the start, and
    // a timeout must not fire early (it fires up to one period late).
    this.headLimit = Math.ceil(cfg.headerTimeoutMs / this.period) + 1;
    this.idleLimit = Math.ceil(cfg.keepAliveTimeoutMs / this.period) + 1;
    this.timer = setInterval(() => this.sweep(), this.period).unref();
  }

  listen(fd: number): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => this.accept(s, true));
    this.servers.push(server);
    return new Promise((resolve, reject) => server.once('error', reject).listen({ fd }, resolve));
  }

  /** `fresh`: accepted here (its request head is due), not handed over idle. */
  private accept(socket: net.Socket, fresh: boolean): void {
    this.conns.add(new ClientConn(this, socket, fresh));
  }

  pool(target: Target): UpstreamPool {
    let p = this.pools.get(target.id);
    if (p === undefined) this.pools.set(target.id, (p = new UpstreamPool(target)));
    return p;
  }

  /** A connection closed or became a tunnel. */
  detach(c: ClientInput): void {
    this.conns.delete(c);
  }

  get handingOff(): boolean {
    return this.handOff !== undefined;
  }

  private sweep(): void {
    for (const c of this.conns) c.tick(this.headLimit, this.idleLimit);
    const now = Date.now();
    for (const p of this.pools.values()) p.sweep(now);
  }

  /** A WebSocket upgrade: the connection becomes a tunnel to the backend. */
  upgrade(client: net.Socket, head: string, rest: Buffer | null): void {
    openUpgradeTunnel({ router: this.router, inflight: this.inflight, tunnels: this.tunnels, queueTimeoutMs: this.cfg.queueTimeoutMs }, client, (upstream) => {
      upstream.write(head, 'latin1');
      if (rest !== null && rest.length > 0) upstream.write(rest);
    });
  }

  forget(alive: Set<string>, gen: number | null): void {
    // Instances of the active generation that left the route (they crashed): drop their pools
    // once idle. Older generations are closed by drain().
    for (const [id, p] of this.pools) {
      if (p.target.gen === gen && !alive.has(id)) { this.pools.delete(id); p.close(); }
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
    // `handle` is how net.Server itself wraps an accepted connection (not in the public types).
    const socket = new net.Socket({ handle, readable: true, writable: true, allowHalfOpen: true } as net.SocketConstructorOpts);
    this.accept(socket, false);
  }

  /**
   * Hands `c` over if it is at a request boundary. Reading stops and the check is made in the
   * same tick; whatever the client sends afterwards waits in the kernel and moves with the fd.
   */
  offer(c: ClientInput): void {
    const handOff = this.handOff;
    const handle = (c.socket as unknown as { _handle: StreamHandle | null })._handle;
    if (handOff === undefined || c.moving || c.socket.destroyed || !handle) return;
    handle.readStop();
    if (!c.atBoundary()) { handle.readStart(); return; }
    // From here nothing may read from it again here: not even Node resuming a paused socket.
    const readStart = handle.readStart;
    handle.readStart = () => 0;
    c.moving = true;
    this.moving++;
    handOff(handle).then(
      () => { this.handed++; this.moving--; c.destroy(); },
      () => { this.moving--; c.moving = false; handle.readStart = readStart; handle.readStart(); },
    );
  }

  async retire(timeoutMs: number, handOff: HandOff): Promise<void> {
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
    this.log.info({ handedOver: this.handed, left: this.conns.size + this.tunnels.size }, 'Connections handed over');
    // What could not move (tunnels, requests still running) finishes here or is cut.
    await waitUntil(() => this.conns.size === 0 && this.tunnels.size === 0 && this.inflight.total() === 0, Math.max(0, deadline - Date.now()));
    await this.stop(0);
  }

  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    for (const s of this.servers) s.close();
    // Busy connections close after a response that says Connection: close. Idle ones are
    // closed by the sweep once quiet for the grace period — never at a moment when every
    // connection merely happens to be between requests, with the next one on its way.
    this.idleLimit = Math.min(this.idleLimit, Math.ceil(STOP_GRACE_MS / this.period) + 1);
    await waitUntil(() => this.inflight.total() === 0 && this.conns.size === 0, timeoutMs);
    this.router.close();
    this.tunnels.cutAll();
    for (const c of [...this.conns]) c.destroy();
    for (const p of this.pools.values()) p.destroy();
    this.pools.clear();
    clearInterval(this.timer);
  }
}
