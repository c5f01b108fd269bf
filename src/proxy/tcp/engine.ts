// L4: new connections go to the active generation; open ones stay where they are until they
// close or their generation's drain deadline cuts them.
import net from 'node:net';
import type { Logger } from '../../log.js';
import type { Target, WorkerConfig } from '../../ipc.js';
import { LISTEN_BACKLOG, type Engine } from '../engine.js';
import type { Inflight } from '../inflight.js';
import type { Router } from '../router.js';
import { BACKLOG_RETRIES, backlogDelayMs, isBacklogFull, isRefused } from '../failure.js';
import { Tunnels } from '../tunnels.js';
import { closeHandle } from '../../internals/index.js';

const MAX_CONNECT_ATTEMPTS = 3;

export class TcpEngine implements Engine {
  private servers: net.Server[] = [];
  private tunnels: Tunnels;

  constructor(private router: Router, private inflight: Inflight, private cfg: WorkerConfig, private log: Logger) {
    this.tunnels = new Tunnels(inflight);
  }

  listen(fd: number): Promise<void> {
    // pauseOnConnect: nothing is read from the client until its upstream is connected, so a
    // refused upstream can be retried elsewhere without losing a byte.
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (c) => this.accept(c));
    this.servers.push(server);
    return new Promise((resolve, reject) => server.once('error', reject).listen({ fd }, LISTEN_BACKLOG, resolve));
  }

  private accept(client: net.Socket): void {
    client.on('error', () => client.destroy());
    this.route(client, 1);
  }

  private route(client: net.Socket, attempt: number): void {
    const t = this.router.pick();
    if (t) return this.connect(client, t, attempt);
    this.router.wait(this.cfg.queueTimeoutMs).then(
      (target) => this.connect(client, target, attempt),
      () => client.destroy(),
    );
  }

  private connect(client: net.Socket, target: Target, attempt: number, full = 0): void {
    if (client.destroyed) return;
    this.inflight.inc(target.gen);
    // noDelay like HAProxy: the client already chose when to send; Nagle here only adds delay.
    const upstream = net.connect({ ...target.address, allowHalfOpen: true, noDelay: true });
    const onError = (err: Error): void => {
      this.inflight.dec(target.gen);
      // Nothing of the client's was read yet: the same instance, a moment later.
      if (isBacklogFull(err) && full < BACKLOG_RETRIES && !client.destroyed) {
        setTimeout(() => this.connect(client, target, attempt, full + 1), backlogDelayMs(full + 1));
        return;
      }
      if (isRefused(err)) this.router.markDown(target, 'refused');
      if (attempt < MAX_CONNECT_ATTEMPTS && !client.destroyed) return this.route(client, attempt + 1);
      this.log.warn({ err: err.message, target: target.id }, 'Upstream connect failed');
      client.destroy();
    };
    upstream.once('error', onError);
    upstream.once('connect', () => {
      upstream.off('error', onError);
      client.setNoDelay(true);
      // Starts reading the client (pipe resumes it; splice reads the handle itself).
      this.tunnels.open(target.gen, client, upstream, true);
    });
  }

  forget(): void {}

  drain(gen: number): Promise<void> {
    return this.inflight.whenIdle(gen);
  }

  cut(gen: number): void {
    this.tunnels.cut(gen);
  }

  /** tcp mode never hands connections over: they stay until they close or are cut. */
  adopt(handle: unknown): void {
    closeHandle(handle);
  }

  retire(timeoutMs: number): Promise<void> {
    return this.stop(timeoutMs);
  }

  async connections(): Promise<number> {
    const counts = await Promise.all(this.servers.map((s) => new Promise<number>((resolve) => s.getConnections((_, n) => resolve(n ?? 0)))));
    return counts.reduce((a, b) => a + b, 0);
  }

  async stop(timeoutMs: number): Promise<void> {
    for (const s of this.servers) s.close();
    this.router.close();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.inflight.whenAllIdle(), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    this.tunnels.cutAll();
  }
}
