// The deploy sequence, in one place: start green → wait healthy → switch → drain blue.
// Invariant: at most one green exists at a time. A deploy requested while one runs is
// coalesced: exactly one more runs after it, however many requests arrive meanwhile.
//
// Each deploy runs a release (a command and added variables): the one a reload asked for, else
// the current one — the release of the last good deploy, which is what HUP redeploys. A failed
// deploy changes nothing. Of reloads with a release queued behind a running deploy the last one
// wins; a reload whose release was overtaken that way fails with why (its release never ran).
//
// With --keep-previous, blue is kept warm (running, unrouted) that long instead of drained. A
// rollback is a run of its own in the same queue: it routes back to the warm generation once it
// passes a check — nothing starts — or else deploys the previous release; either way the
// generation rolled back from drains.
import { EventEmitter } from 'node:events';
import { checkRelease, type Release } from '../backend/command.js';
import { Coalescer } from '../coalescer.js';
import { describe } from '../errors.js';
import type { Logger } from '../log.js';
import { Generation, type GenerationContext, type RestartReason } from './generation.js';
import type { ProxyWorkers } from './proxy-workers.js';
import { CANARY_ENDED, CANARY_STARTED, KEPT_WARM, PROMOTED, ROLLBACK_NOT_WARM, ROLLED_BACK } from '../messages.js';
import { DEPLOYED, DEPLOYING, DEPLOY_FAILED, DEPLOY_FAILED_NOTHING_SERVING, DRAINED, DRAINING, DRAIN_DEADLINE, RELOAD_QUEUED, RELOAD_REFUSED } from '../messages.js';

/** `command`: what the generation runs; `envKeys`: the variables added for it (values stay private). */
export type DeployResult =
  /** `warm`: a rollback that routed back to the generation --keep-previous kept running. */
  | { ok: true; gen: number; pids: number[]; ms: number; command: string[]; envKeys: string[]; warm?: boolean; canary?: number }
  | { ok: false; gen: number; error: string };

/** What a run was asked to do besides a HUP's deploy of the current release; the last one asked for wins. */
type Ask =
  | { kind: 'deploy'; release: Release; canaryPercent: number | undefined }
  | { kind: 'rollback' }
  | { kind: 'promote' };

/** One run of the sequence, with what it was asked to do (a requester tells by it whether its own ran). */
type Run = { result: DeployResult; ask: Ask | undefined };

function describeAsk(ask: Ask | undefined): string {
  if (ask === undefined) return 'deploy';
  if (ask.kind !== 'deploy') return ask.kind;
  return `reload (${ask.release.command.join(' ')}${ask.canaryPercent === undefined ? '' : `, canary ${ask.canaryPercent} %`})`;
}

/**
 * Emits `change` whenever the set of running generations or their pids changes, `deployed`
 * with each deploy's outcome, `restarted` when the active generation restarted a backend.
 */
export class Deployer extends EventEmitter<{ change: []; deployed: [DeployResult]; restarted: [RestartReason] }> {
  active: Generation | undefined;
  readonly draining = new Set<Generation>();
  private nextId = 1;
  private runs = new Coalescer(() => this.run());
  /** What HUP deploys: the release of the last good deploy. */
  current: Release;
  /**
   * What the next run does, if not a deploy of the current release (as HUP): a reload's release
   * (optionally as a canary), a rollback or a promote. The last one asked for wins.
   */
  private ask: Ask | undefined;
  /** The generation before the active one, kept running for --keep-previous. */
  warm: Generation | undefined;
  private warmTimer: NodeJS.Timeout | undefined;
  /** The release the active generation replaced: what a rollback deploys when nothing is warm. */
  private previous: Release | undefined;
  /** A generation serving a share of clients beside the active one (`reload --canary`). */
  canary: Generation | undefined;
  canaryPercent = 0;
  green: Generation | undefined;
  private stopped = false;
  private log: Logger;

  constructor(private ctx: GenerationContext, private workers: ProxyWorkers) {
    super();
    this.log = ctx.log.child({ component: 'deployer' });
    this.current = { command: ctx.options.command, env: {} };
  }

  /**
   * A new generation of `release` (checked first: one that cannot start is refused), else of
   * the current one. `canaryPercent`: it serves that share of clients until promote or rollback.
   */
  async deploy(release?: Release, canaryPercent?: number): Promise<DeployResult> {
    if (release) {
      try {
        checkRelease(release);
      } catch (err) {
        const error = describe(err);
        this.log.error({ command: release.command, err: error }, RELOAD_REFUSED);
        return { ok: false, gen: 0, error };
      }
    }
    // A plain HUP joins whatever runs next; a reload that says what to run asks for it.
    if (!release && canaryPercent === undefined) return (await this.runs.request()).result;
    return this.request({ kind: 'deploy', release: release ?? this.current, canaryPercent });
  }

  /** Back to the previous generation: the warm one at once, else a deploy of its release; or the end of a canary. */
  rollback(): Promise<DeployResult> {
    return this.request({ kind: 'rollback' });
  }

  /** The canary takes all traffic; the generation it ran beside drains (or is kept warm). */
  promote(): Promise<DeployResult> {
    return this.request({ kind: 'promote' });
  }

  private async request(ask: Ask): Promise<DeployResult> {
    if (this.runs.busy) {
      const command = ask.kind === 'deploy' ? ask.release.command : undefined;
      this.log.info({ asked: describeAsk(ask), command, overtakes: this.ask && describeAsk(this.ask) }, RELOAD_QUEUED);
    }
    this.ask = ask;
    const run = await this.runs.request();
    if (run.ask !== ask) return { ok: false, gen: run.result.gen, error: `overtaken by a later ${describeAsk(run.ask)} before it started` };
    return run.result;
  }

  /** Resolves once no deploy is running or queued. */
  settled(): Promise<void> {
    return this.runs.settled();
  }

  private async run(): Promise<Run> {
    const ask = this.ask;
    this.ask = undefined;
    let result: DeployResult;
    if (ask?.kind === 'rollback') result = this.canary ? await this.endCanary() : await this.rollbackSteps();
    else if (ask?.kind === 'promote') result = await this.promoteCanary();
    else if (this.canary) {
      result = { ok: false, gen: 0, error: `generation ${this.canary.id} is a canary: hotproxy promote or hotproxy rollback first` };
      this.log.error({ err: result.error }, RELOAD_REFUSED);
    }
    else result = await this.steps(ask?.release ?? this.current, true, ask?.canaryPercent);
    this.emit('deployed', result);
    return { result, ask };
  }

  private async rollbackSteps(): Promise<DeployResult> {
    const from = this.active;
    const warm = this.warm;
    const t0 = Date.now();
    if (warm) {
      this.forgetWarm();
      // 1. check the warm generation, 2. switch back to it, 3. drain the one rolled back from
      const why = await warm.check();
      if (why === undefined && !this.stopped) {
        const log = this.log.child({ gen: warm.id });
        this.active = warm;
        warm.reactivate();
        this.previous = from?.release;
        this.current = warm.release;
        await this.publish();
        const ms = Date.now() - t0;
        log.info({ pids: warm.pids, ms, from: from?.id, warm: true }, ROLLED_BACK);
        if (from) void this.drain(from);
        return { ok: true, gen: warm.id, pids: warm.pids, ms, command: warm.release.command, envKeys: Object.keys(warm.release.env), warm: true };
      }
      this.log.warn({ gen: warm.id, err: why }, ROLLBACK_NOT_WARM);
      void this.drain(warm);
    }
    const release = this.previous;
    if (!release) return { ok: false, gen: 0, error: 'nothing to roll back to: no deploy has replaced the first generation' };
    // Deployed anew; the generation rolled back from drains (it is not kept warm).
    return this.steps(release, false);
  }

  /** Drops the warm generation's timer; it is the caller's to route or drain. */
  private forgetWarm(): void {
    clearTimeout(this.warmTimer);
    this.warm = undefined;
  }

  /** `keepBlue`: keep the generation replaced warm for --keep-previous (not on a rollback). */
  private async steps(release: Release, keepBlue = true, canaryPercent?: number): Promise<DeployResult> {
    const { options } = this.ctx;
    if (this.stopped) return { ok: false, gen: 0, error: 'hotproxy is stopping' };
    const green = new Generation(this.nextId++, release, this.ctx);
    const log = this.log.child({ gen: green.id });
    const t0 = Date.now();
    this.green = green;
    const envKeys = Object.keys(release.env);
    log.info({ command: release.command, envKeys }, DEPLOYING);
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
    if (canaryPercent !== undefined && this.active) return this.startCanary(green, canaryPercent, t0);
    // 3. switch: once every worker acknowledged, blue gets no new request; HUP runs this from now on
    const blue = this.active;
    this.active = green;
    if (blue) this.previous = blue.release;
    this.current = release;
    green.activate();
    this.follow(green);
    await this.publish();
    const ms = Date.now() - t0;
    log.info({ pids: green.pids, ms, previous: blue?.id, command: release.command }, DEPLOYED);
    // 4. drain blue (or keep it warm); the next deploy need not wait for it
    if (blue && keepBlue && options.keepPreviousMs > 0) this.keepWarm(blue);
    else if (blue) void this.drain(blue);
    return { ok: true, gen: green.id, pids: green.pids, ms, command: release.command, envKeys };
  }

  /** A serving generation's instances come and go (restarts, health): the route follows. */
  private follow(gen: Generation): void {
    gen.on('targets', () => { if (gen === this.active || gen === this.canary) void this.publish(); });
    gen.on('restarted', (why) => this.emit('restarted', why));
  }

  /** The route as it stands: the active generation, and the canary's share beside it. */
  private async publish(): Promise<void> {
    const a = this.active;
    if (!a) return;
    const c = this.canary;
    await this.workers.setRoute(a.id, a.targets(), c && { gen: c.id, targets: c.targets(), percent: this.canaryPercent });
    this.emit('change');
  }

  /** 3'. a canary: green serves `percent` of clients beside blue, until promote or rollback. */
  private async startCanary(green: Generation, percent: number, t0: number): Promise<DeployResult> {
    this.canary = green;
    this.canaryPercent = percent;
    green.activate(true);
    this.follow(green);
    await this.publish();
    const ms = Date.now() - t0;
    this.log.info({ gen: green.id, pids: green.pids, ms, percent, beside: this.active?.id, command: green.release.command }, CANARY_STARTED);
    return { ok: true, gen: green.id, pids: green.pids, ms, command: green.release.command, envKeys: Object.keys(green.release.env), canary: percent };
  }

  private async promoteCanary(): Promise<DeployResult> {
    const green = this.canary;
    if (!green) return { ok: false, gen: 0, error: 'no canary is running (hotproxy reload --canary <percent> starts one)' };
    const t0 = Date.now();
    const blue = this.active;
    this.canary = undefined;
    this.active = green;
    green.promote();
    if (blue) this.previous = blue.release;
    this.current = green.release;
    await this.publish();
    this.log.info({ gen: green.id, pids: green.pids, previous: blue?.id, ms: Date.now() - t0 }, PROMOTED);
    if (blue && this.ctx.options.keepPreviousMs > 0) this.keepWarm(blue);
    else if (blue) void this.drain(blue);
    return { ok: true, gen: green.id, pids: green.pids, ms: Date.now() - t0, command: green.release.command, envKeys: Object.keys(green.release.env) };
  }

  /** A rollback during a canary ends it: all traffic to the active generation, the canary drains. */
  private async endCanary(): Promise<DeployResult> {
    const green = this.canary!;
    const blue = this.active!;
    const t0 = Date.now();
    this.canary = undefined;
    await this.publish();
    this.log.info({ gen: blue.id, canary: green.id, ms: Date.now() - t0 }, CANARY_ENDED);
    void this.drain(green);
    return { ok: true, gen: blue.id, pids: blue.pids, ms: Date.now() - t0, command: blue.release.command, envKeys: Object.keys(blue.release.env), warm: true };
  }

  /** Unrouted, finishing what it has in flight, running on for --keep-previous. */
  private keepWarm(blue: Generation): void {
    const { keepPreviousMs, drainTimeoutMs } = this.ctx.options;
    // One warm generation at most: the one kept before goes now.
    const older = this.warm;
    if (older) { this.forgetWarm(); void this.drain(older); }
    this.warm = blue;
    blue.keepWarm();
    this.log.info({ gen: blue.id, pids: blue.pids, keepMs: keepPreviousMs }, KEPT_WARM);
    // Its in-flight requests finish and the workers drop its idle connections; its processes stay.
    void this.workers.drain(blue.id, drainTimeoutMs);
    this.warmTimer = setTimeout(() => {
      if (this.warm !== blue) return;
      this.forgetWarm();
      void this.drain(blue);
    }, keepPreviousMs);
    this.warmTimer.unref();
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
    const warm = this.warm;
    this.forgetWarm();
    await Promise.all([
      green?.stop(drainTimeoutMs),
      warm?.stop(drainTimeoutMs),
      this.active?.stop(drainTimeoutMs),
      ...[...this.draining].map((g) => g.stop(drainTimeoutMs)),
    ]);
    await this.runs.settled();
  }

  kill(): void {
    for (const g of [this.green, this.active, this.warm, ...this.draining]) g?.kill();
  }
}
