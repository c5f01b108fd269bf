// A generation: the --workers instances of one deploy of the app. While active it keeps its
// instances alive: one that exits unexpectedly is restarted with backoff and rejoins the
// route once healthy; meanwhile requests queue in the proxy workers. Its instances are
// checked continuously (health/monitor.ts): one that fails its checks leaves rotation, and
// one that stays out is replaced — a hung process never exits by itself. Its state changes only
// through the moves below (starting → active → draining → stopped, or starting → failed).
import { EventEmitter } from 'node:events';
import { Backoff } from '../backoff.js';
import type { Release } from '../backend/command.js';
import type { Reaper } from '../backend/reaper.js';
import { DeployError, describe } from '../errors.js';
import { describeExit, Instance } from '../backend/instance.js';
import { probeOnce, waitHealthy, type HealthOptions } from '../health/health.js';
import { Monitor, type InstanceHealth, type MonitorOptions } from '../health/monitor.js';
import type { Target } from '../ipc.js';
import type { Logger } from '../log.js';
import type { Options } from '../options.js';
import { StateMachine, type Moves } from '../state.js';
import { BACKEND_EXITED, BACKEND_REPLACED, BACKEND_RESTARTED, BACKEND_RESTART_FAILED, BACKEND_STARTED, REPLACING_BACKEND } from '../messages.js';

export type GenerationState = 'starting' | 'canary' | 'active' | 'warm' | 'draining' | 'stopped' | 'failed';

const MOVES: Moves<GenerationState> = {
  starting: ['active', 'canary', 'failed', 'stopped'], // stopped: hotproxy stops during the deploy
  // Serving a share of clients beside the active generation: promoted, or rolled back (drained).
  canary: ['active', 'draining', 'stopped'],
  active: ['warm', 'draining', 'stopped'],
  // Kept for --keep-previous after a deploy: back to active on a rollback, else drained.
  warm: ['active', 'draining', 'stopped'],
  draining: ['stopped'],
  failed: ['stopped'],
  stopped: [],
};

export interface GenerationContext {
  options: Options;
  runtimeDir: string;
  health: HealthOptions;
  /** Continuous checks of the serving generation; undefined: off (--live-interval 0). */
  live: MonitorOptions | undefined;
  reaper: Reaper;
  log: Logger;
}

interface Slot {
  index: number;
  attempt: number;
  instance: Instance | undefined;
  healthy: boolean;
  backoff: Backoff;
  timer: NodeJS.Timeout | undefined;
}

/** Why an instance was started again: it exited, or it stayed out of rotation. */
export type RestartReason = 'exit' | 'unhealthy';

export interface InstanceStatus {
  instance: number;
  pid: number | null;
  health: InstanceHealth['health'] | 'starting';
  reason?: string;
  outForMs?: number;
}

export class Generation extends EventEmitter<{ targets: []; restarted: [RestartReason] }> {
  private machine: StateMachine<GenerationState>;
  readonly startedAt = Date.now();
  private slots: Slot[];
  private log: Logger;
  private abort = new AbortController();
  private monitor: Monitor | undefined;

  /** `release`: what every instance of it runs, restarts included, whatever is deployed later. */
  constructor(readonly id: number, readonly release: Release, private ctx: GenerationContext) {
    super();
    this.log = ctx.log.child({ component: 'generation', gen: id });
    this.machine = new StateMachine<GenerationState>('starting', MOVES, this.log, 'Generation state');
    this.slots = Array.from({ length: ctx.options.workers }, (_, index) => ({
      index, attempt: 0, instance: undefined, healthy: false, backoff: new Backoff(), timer: undefined,
    }));
  }

  get state(): GenerationState {
    return this.machine.state;
  }

  get pids(): number[] {
    return this.slots.map((s) => s.instance?.pid ?? -1).filter((p) => p > 0);
  }

  get size(): number {
    return this.slots.length;
  }

  get healthyCount(): number {
    return this.slots.filter((s) => s.healthy).length;
  }

  /** Each instance's health, for `hotproxy status`. */
  instances(): InstanceStatus[] {
    return this.slots.map((s) => {
      const seen = this.monitor?.describe(s.index);
      const health = seen?.health ?? (s.healthy ? 'healthy' : 'starting');
      return { ...seen, instance: s.index, pid: s.instance?.pid ?? null, health };
    });
  }

  targets(): Target[] {
    return this.slots
      .filter((s) => s.healthy && s.instance)
      .map((s) => ({ id: s.instance!.id, gen: this.id, pid: s.instance!.pid, address: s.instance!.address }));
  }

  /** Starts every instance and resolves once all are healthy; throws DeployError otherwise. */
  async start(timeoutMs: number): Promise<void> {
    // One that passed its checks and exits while its siblings are still starting fails the
    // deploy too: the switch must never route to an instance that is already gone.
    let died = (_err: DeployError): void => {};
    const death = new Promise<never>((_, reject) => (died = reject));
    death.catch(() => {});
    await Promise.race([death, Promise.all(this.slots.map(async (slot) => {
      const inst = await this.spawn(slot);
      await waitHealthy(inst, this.ctx.health, timeoutMs, this.abort.signal);
      slot.healthy = true;
      void inst.exited.then((info) => {
        if (this.state === 'starting' && !inst.stopping) died(new DeployError(`backend ${inst.pid} ${describeExit(info)} after it was healthy`));
      });
    }))]);
  }

  /** Takes traffic (all of it, or a canary's share), so crashed and hung instances are replaced. */
  get serving(): boolean {
    return this.state === 'active' || this.state === 'canary';
  }

  /** Takes traffic from now on; an instance that exits is restarted. `canary`: a share of it. */
  activate(canary = false): void {
    this.machine.to(canary ? 'canary' : 'active');
    this.startMonitor();
    for (const slot of this.slots) {
      const inst = slot.instance!;
      slot.backoff.up();
      this.watch(slot, inst);
      void inst.exited.then(() => this.onExit(slot, inst));
    }
  }

  /**
   * No longer routed, but kept running (--keep-previous) so a rollback is a route switch.
   * Not checked or restarted meanwhile: a rollback checks it first.
   */
  keepWarm(): void {
    this.machine.to('warm');
    this.monitor?.stop();
    this.monitor = undefined;
  }

  /** Every instance still running and passing one check now; else why not. */
  async check(): Promise<string | undefined> {
    const why = await Promise.all(this.slots.map(async (s) => {
      const inst = s.instance;
      if (!inst || inst.exitInfo) return `instance ${s.index} is gone`;
      // Nothing to ask a tcp backend without --health-cmd: running is all there is to know.
      const h = this.ctx.health;
      if (h.cmd === undefined && (h.mode === 'tcp' || h.readyDelayMs !== undefined)) return undefined;
      const r = await probeOnce(inst, h, this.ctx.options.healthTimeoutMs);
      return r.ok ? undefined : `instance ${s.index} (pid ${inst.pid}): ${r.reason}`;
    }));
    return why.find((w) => w !== undefined);
  }

  /** A canary promoted: it takes all traffic now (already watched and restarted as it served). */
  promote(): void {
    this.machine.to('active');
  }

  /** Routed again after a rollback (its instances passed check()). */
  reactivate(): void {
    this.machine.to('active');
    this.startMonitor();
    for (const slot of this.slots) {
      slot.healthy = true;
      this.watch(slot, slot.instance!);
    }
  }

  private startMonitor(): void {
    const live = this.ctx.live;
    if (!live) return;
    this.monitor = new Monitor(live, {
      changed: (i) => { const s = this.slots[i]!; s.healthy = this.monitor!.inRotation(i); this.emit('targets'); },
      replace: (i, why) => this.replace(this.slots[i]!, why),
    }, this.log);
  }

  /** A worker saw instance `id` refuse a connection or stay silent: a failed check. */
  suspect(id: string, reason: 'refused' | 'timeout'): void {
    this.monitor?.report(id, reason === 'timeout' ? `no answer within --backend-timeout (${this.ctx.options.backendTimeoutMs} ms)` : 'connection refused');
  }

  private watch(slot: Slot, inst: Instance): void {
    this.monitor?.watch(slot.index, { id: inst.id, pid: inst.pid, probe: (ms) => probeOnce(inst, this.ctx.health, ms) });
  }

  /**
   * Out of rotation too long: a new instance on a fresh socket takes the slot; the old one
   * gets SIGTERM now and SIGKILL after --drain-timeout. A stopped (SIGSTOP) process cannot act
   * on SIGTERM, so the replacement does not wait for it.
   */
  private replace(slot: Slot, reason: string): void {
    const old = slot.instance;
    if (!this.serving || !old) return;
    const outForMs = this.monitor?.describe(slot.index)?.outForMs;
    this.monitor?.unwatch(slot.index);
    slot.healthy = false;
    this.log.warn({ backendPid: old.pid, instance: slot.index, reason, outForMs }, REPLACING_BACKEND);
    void old.stop(this.ctx.options.drainTimeoutMs);
    void this.restart(slot, 'unhealthy');
  }

  /** The deploy did not make it: stop whatever of it started. */
  async fail(timeoutMs: number): Promise<void> {
    this.machine.to('failed');
    await this.stop(timeoutMs);
  }

  /** No new requests come; what is in flight finishes. Crashed instances are not restarted. */
  drain(): void {
    this.machine.to('draining');
    this.monitor?.stop();
  }

  private async spawn(slot: Slot): Promise<Instance> {
    const { options, runtimeDir, log } = this.ctx;
    const inst = await Instance.start({
      gen: this.id, index: slot.index, attempt: slot.attempt++,
      command: this.release.command, env: this.release.env, kind: options.backend, runtimeDir, log, reaper: this.ctx.reaper,
    });
    slot.instance = inst;
    this.log.info({ backendPid: inst.pid, instance: slot.index }, BACKEND_STARTED);
    return inst;
  }

  private onExit(slot: Slot, inst: Instance): void {
    if (!this.serving || inst.stopping || slot.instance !== inst) return;
    this.monitor?.unwatch(slot.index);
    slot.healthy = false;
    this.emit('targets');
    const delay = slot.backoff.take();
    this.log.error({ backendPid: inst.pid, instance: slot.index, restartInMs: delay, maxDelayMs: slot.backoff.max }, BACKEND_EXITED(describeExit(inst.exitInfo!)));
    slot.timer = setTimeout(() => void this.restart(slot, 'exit'), delay);
  }

  private async restart(slot: Slot, reason: RestartReason): Promise<void> {
    if (!this.serving) return;
    this.emit('restarted', reason);
    let inst: Instance | undefined;
    try {
      inst = await this.spawn(slot);
      await waitHealthy(inst, this.ctx.health, this.ctx.options.deployTimeoutMs, this.abort.signal);
    } catch (err) {
      if (!this.serving) return;
      // Not healthy: stop it and go round again (its exit handler is not attached yet).
      if (inst && !inst.exitInfo) await inst.stop(1_000);
      const delay = slot.backoff.take();
      // One line per attempt, with the delay, so a crash loop reads as one in the log.
      this.log.error({ instance: slot.index, attempt: slot.attempt - 1, restartInMs: delay, maxDelayMs: slot.backoff.max, err: describe(err) }, BACKEND_RESTART_FAILED);
      slot.timer = setTimeout(() => void this.restart(slot, reason), delay);
      return;
    }
    if (!this.serving) return;
    slot.healthy = true;
    slot.backoff.up();
    const started = inst;
    void started.exited.then(() => this.onExit(slot, started));
    this.watch(slot, started);
    this.log.info({ backendPid: inst.pid, instance: slot.index, reason }, reason === 'unhealthy' ? BACKEND_REPLACED : BACKEND_RESTARTED);
    this.emit('targets');
  }

  /** SIGTERM every instance, SIGKILL what is left after `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    this.abort.abort();
    this.monitor?.stop();
    for (const slot of this.slots) { clearTimeout(slot.timer); slot.backoff.cancel(); slot.healthy = false; }
    this.machine.to('stopped');
    await Promise.all(this.slots.map((s) => s.instance?.stop(timeoutMs)));
  }

  /** Last resort (a second Ctrl-C): SIGKILL every process group now. */
  kill(): void {
    for (const s of this.slots) s.instance?.signal('SIGKILL');
  }
}
