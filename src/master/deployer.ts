// The deploy sequence, in one place: start green → wait healthy → switch → drain blue.
// Invariant: at most one green exists at a time. A deploy requested while one runs is
// coalesced: exactly one more runs after it, however many requests arrive meanwhile.
import { EventEmitter } from 'node:events';
import { Coalescer } from '../coalescer.js';
import { describe } from '../errors.js';
import type { Logger } from '../log.js';
import { Generation, type GenerationContext, type RestartReason } from './generation.js';
import type { ProxyWorkers } from './proxy-workers.js';
import { DEPLOYED, DEPLOYING, DEPLOY_FAILED, DEPLOY_FAILED_NOTHING_SERVING, DRAINED, DRAINING, DRAIN_DEADLINE } from '../messages.js';

export type DeployResult =
  | { ok: true; gen: number; pids: number[]; ms: number }
  | { ok: false; gen: number; error: string };

/**
 * Emits `change` whenever the set of running generations or their pids changes, `deployed`
 * with each deploy's outcome, `restarted` when the active generation restarted a backend.
 */
export class Deployer extends EventEmitter<{ change: []; deployed: [DeployResult]; restarted: [RestartReason] }> {
  active: Generation | undefined;
  readonly draining = new Set<Generation>();
  private nextId = 1;
  private runs = new Coalescer(() => this.run());
  green: Generation | undefined;
  private stopped = false;
  private log: Logger;

  constructor(private ctx: GenerationContext, private workers: ProxyWorkers) {
    super();
    this.log = ctx.log.child({ component: 'deployer' });
  }

  deploy(): Promise<DeployResult> {
    return this.runs.request();
  }

  /** Resolves once no deploy is running or queued. */
  settled(): Promise<void> {
    return this.runs.settled();
  }

  private async run(): Promise<DeployResult> {
    const result = await this.steps();
    this.emit('deployed', result);
    return result;
  }

  private async steps(): Promise<DeployResult> {
    const { options } = this.ctx;
    if (this.stopped) return { ok: false, gen: 0, error: 'hotproxy is stopping' };
    const green = new Generation(this.nextId++, this.ctx);
    const log = this.log.child({ gen: green.id });
    const t0 = Date.now();
    this.green = green;
    log.info(DEPLOYING);
    try {
      // 1. start green, 2. wait until it is healthy
      await green.start(options.deployTimeoutMs);
    } catch (err) {
      const error = describe(err);
      log.error({ err: error }, this.active ? DEPLOY_FAILED : DEPLOY_FAILED_NOTHING_SERVING);
      await green.fail(Math.min(options.drainTimeoutMs, 5_000));
      return { ok: false, gen: green.id, error };
    } finally {
      this.green = undefined;
    }
    if (this.stopped) {
      await green.stop(options.drainTimeoutMs);
      return { ok: false, gen: green.id, error: 'hotproxy is stopping' };
    }
    // 3. switch: once every worker acknowledged, blue gets no new request
    const blue = this.active;
    this.active = green;
    green.activate();
    green.on('targets', () => void this.publish(green));
    green.on('restarted', (why) => this.emit('restarted', why));
    await this.publish(green);
    const ms = Date.now() - t0;
    log.info({ pids: green.pids, ms, previous: blue?.id }, DEPLOYED);
    // 4. drain blue; the next deploy need not wait for it
    if (blue) void this.drain(blue);
    return { ok: true, gen: green.id, pids: green.pids, ms };
  }

  private async publish(gen: Generation): Promise<void> {
    if (this.active !== gen) return;
    await this.workers.setRoute(gen.id, gen.targets());
    this.emit('change');
  }

  private async drain(blue: Generation): Promise<void> {
    const { drainTimeoutMs } = this.ctx.options;
    const log = this.log.child({ gen: blue.id });
    this.draining.add(blue);
    blue.drain();
    log.info({ pids: blue.pids }, DRAINING);
    const clean = await this.workers.drain(blue.id, drainTimeoutMs);
    if (!clean) log.warn({ timeoutMs: drainTimeoutMs }, DRAIN_DEADLINE);
    await blue.stop(drainTimeoutMs);
    this.draining.delete(blue);
    log.info({ pids: blue.pids }, DRAINED);
    this.emit('change');
  }

  /** Cancels a deploy in progress and stops every generation. */
  async stop(): Promise<void> {
    this.stopped = true;
    const { drainTimeoutMs } = this.ctx.options;
    const green = this.green;
    await Promise.all([
      green?.stop(drainTimeoutMs),
      this.active?.stop(drainTimeoutMs),
      ...[...this.draining].map((g) => g.stop(drainTimeoutMs)),
    ]);
    await this.runs.settled();
  }

  kill(): void {
    for (const g of [this.green, this.active, ...this.draining]) g?.kill();
  }
}
