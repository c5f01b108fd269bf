// Continuous health checks of a serving generation, one instance per slot. Every
// --live-interval each instance gets the deploy's check; a failure is checked again soon
// (HAProxy's fastinter), so a hung instance leaves rotation after --health-fall checks, not
// --health-fall intervals. A worker's report of a refused connection or a backend timeout
// counts as one failed check and starts the next one at once. Out of rotation for
// --unhealthy-restart, an instance is handed back to be replaced; one that comes back before
// that (a flapping one) never is: the clock starts again each time it leaves.
import type { Logger } from '../log.js';
import { BACKEND_BACK, BACKEND_OUT } from '../messages.js';
import type { ProbeResult } from './probe.js';
import { HealthRecord, type Health } from './record.js';

export interface MonitorOptions {
  intervalMs: number;
  timeoutMs: number;
  fall: number;
  rise: number;
  restartAfterMs: number;
}

export interface Watched {
  readonly id: string;
  readonly pid: number;
  probe(timeoutMs: number): Promise<ProbeResult>;
}

export interface MonitorHooks {
  /** Slot `index` left or rejoined rotation, or passed a check after a report (route again). */
  changed(index: number): void;
  /** Slot `index` has been out of rotation for --unhealthy-restart. */
  replace(index: number, reason: string): void;
}

/** The next check after a failure, or while coming back: soon, not a whole interval later. */
const RECHECK_MS = 200;

interface Watch {
  index: number;
  inst: Watched;
  record: HealthRecord;
  timer: NodeJS.Timeout | undefined;
  restartTimer: NodeJS.Timeout | undefined;
  probing: boolean;
  /** A report counted since the last check finished (at most one per check). */
  reported: boolean;
}

export interface InstanceHealth {
  health: Health;
  reason?: string;
  /** How long it has been out of rotation. */
  outForMs?: number;
}

export class Monitor {
  private watches = new Map<number, Watch>();
  private stopped = false;

  constructor(private opts: MonitorOptions, private hooks: MonitorHooks, private log: Logger) {}

  /** Starts checking `inst`, healthy and in rotation now, in slot `index`. */
  watch(index: number, inst: Watched): void {
    this.unwatch(index);
    const w: Watch = {
      index, inst, record: new HealthRecord(this.opts.fall, this.opts.rise),
      timer: undefined, restartTimer: undefined, probing: false, reported: false,
    };
    this.watches.set(index, w);
    this.schedule(w, this.opts.intervalMs);
  }

  unwatch(index: number): void {
    const w = this.watches.get(index);
    if (!w) return;
    clearTimeout(w.timer);
    clearTimeout(w.restartTimer);
    this.watches.delete(index);
  }

  inRotation(index: number): boolean {
    return this.watches.get(index)?.record.inRotation ?? false;
  }

  describe(index: number): InstanceHealth | undefined {
    const r = this.watches.get(index)?.record;
    if (!r) return undefined;
    return {
      health: r.health,
      ...(r.reason !== undefined ? { reason: r.reason } : {}),
      ...(r.outSince !== undefined ? { outForMs: Date.now() - r.outSince } : {}),
    };
  }

  /** A worker saw instance `id` refuse a connection or stay silent. */
  report(id: string, reason: string): void {
    const w = [...this.watches.values()].find((x) => x.inst.id === id);
    if (!w || w.reported) return;
    w.reported = true;
    this.failed(w, reason);
    if (!w.probing) { clearTimeout(w.timer); void this.check(w); }
  }

  stop(): void {
    this.stopped = true;
    for (const i of [...this.watches.keys()]) this.unwatch(i);
  }

  private schedule(w: Watch, ms: number): void {
    clearTimeout(w.timer);
    w.timer = setTimeout(() => void this.check(w), ms);
    w.timer.unref();
  }

  private async check(w: Watch): Promise<void> {
    w.probing = true;
    const result = await w.inst.probe(this.opts.timeoutMs);
    w.probing = false;
    if (this.stopped || this.watches.get(w.index) !== w) return;
    const reported = w.reported;
    w.reported = false;
    if (result.ok) this.passed(w, reported);
    else this.failed(w, result.reason);
    this.schedule(w, w.record.unsettled ? Math.min(RECHECK_MS, this.opts.intervalMs) : this.opts.intervalMs);
  }

  private failed(w: Watch, reason: string): void {
    if (!w.record.fail(reason, Date.now())) return;
    this.log.warn({ instance: w.index, backendPid: w.inst.pid, reason, fall: this.opts.fall }, BACKEND_OUT);
    this.hooks.changed(w.index);
    w.restartTimer = setTimeout(() => {
      if (this.watches.get(w.index) === w && !w.record.inRotation) this.hooks.replace(w.index, reason);
    }, this.opts.restartAfterMs);
    w.restartTimer.unref();
  }

  private passed(w: Watch, reported: boolean): void {
    const outSince = w.record.outSince;
    if (w.record.pass()) {
      clearTimeout(w.restartTimer);
      this.log.info({ instance: w.index, backendPid: w.inst.pid, outForMs: Date.now() - outSince! }, BACKEND_BACK);
      this.hooks.changed(w.index);
    } else if (reported && w.record.inRotation) {
      // Workers skip an instance they reported until the next route: it is fine, say so.
      this.hooks.changed(w.index);
    }
  }
}
