// The worker's view of where traffic goes. Invariant: once `set` returns, `pick` never
// hands out a target of a generation that is no longer routed — that is what lets the
// master drain and stop the old generation as soon as every worker has acknowledged.
// While paused (`hotproxy pause`) nothing is handed out: every request waits, without its
// --queue-timeout, until resume() releases them in the order they came, or expire() (past
// --max-pause) fails them. A request already sent that must go once more elsewhere (a silent
// backend: other()) is in-flight work the pause waits for, so other() still answers.
// During a canary the route has two sides; the engine says which side a client is on
// (src/proxy/canary.ts) and pick() falls back to the other side when its own has no target.
import { NoRouteError, PauseExpiredError, StoppingError } from '../errors.js';
import type { Canary, Route, Target } from '../ipc.js';

interface Waiter {
  resolve(t: Target): void;
  reject(e: Error): void;
  /** The queue timeout; none while paused. */
  timer: NodeJS.Timeout | undefined;
  timeoutMs: number;
  toCanary: boolean;
}

/** Why this worker stopped sending to an instance; the master hears it (a failed check). */
export type SuspectReason = 'refused' | 'timeout';

/**
 * How long a suspected instance is skipped here if no new route comes. The master answers a
 * report with a health check and a route (which clears the marks) well before this; the
 * expiry only keeps a slow instance from being shunned for good if that answer is lost.
 */
const DOWN_MS = 5_000;

export class Router {
  private targets: Target[] = [];
  /** The canary side of the route, if a canary runs. */
  canary: Canary | undefined;
  private next = 0;
  /** Instances this worker saw refuse a connection or stay silent, and until when to skip them. */
  private down = new Map<string, number>();
  private waiters = new Set<Waiter>();
  private closed = false;
  private paused = false;
  /** Told of each instance marked down, so the master can check it at once. */
  onSuspect: ((target: Target, reason: SuspectReason) => void) | undefined;

  set(route: Route): void {
    this.targets = route.targets;
    this.canary = route.canary;
    this.down.clear();
    this.wake();
  }

  /**
   * A target now, or undefined when requests must queue. Round robin. `toCanary`: the client
   * is on the canary's side (its own side first, then the other).
   */
  pick(toCanary = false): Target | undefined {
    if (this.paused) return undefined;
    const c = this.canary;
    if (c === undefined) return this.from(this.targets);
    return toCanary ? this.from(c.targets) ?? this.from(this.targets) : this.from(this.targets) ?? this.from(c.targets);
  }

  private from(list: Target[], not?: Target): Target | undefined {
    const n = list.length;
    for (let i = 0; i < n; i++) {
      const t = list[this.next++ % n]!;
      if (t !== not && (this.down.size === 0 || !this.isDown(t))) return t;
    }
    return undefined;
  }

  /** A routable target other than `t`, on its side, without waiting. */
  other(t: Target): Target | undefined {
    const c = this.canary;
    return this.from(c !== undefined && c.targets.includes(t) ? c.targets : this.targets, t);
  }

  private isDown(t: Target): boolean {
    const until = this.down.get(t.id);
    if (until === undefined) return false;
    if (Date.now() < until) return true;
    this.down.delete(t.id);
    return false;
  }

  /** A target as soon as one is routable, or NoRouteError after `timeoutMs`. */
  wait(timeoutMs: number, toCanary = false): Promise<Target> {
    const t = this.pick(toCanary);
    if (t) return Promise.resolve(t);
    if (this.closed) return Promise.reject(new StoppingError());
    return new Promise((resolve, reject) => {
      const w: Waiter = { resolve, reject, timer: undefined, timeoutMs, toCanary };
      if (!this.paused) this.arm(w);
      this.waiters.add(w);
    });
  }

  private arm(w: Waiter): void {
    w.timer = setTimeout(() => { this.waiters.delete(w); w.reject(new NoRouteError()); }, w.timeoutMs);
  }

  /** Requests waiting now; while paused, all of them are held by the pause. */
  get held(): number {
    return this.paused ? this.waiters.size : 0;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  pause(): void {
    this.paused = true;
    for (const w of this.waiters) { clearTimeout(w.timer); w.timer = undefined; }
  }

  /** Releases the held requests in order; those without a target get a fresh queue timeout. Returns how many were held. */
  resume(): number {
    if (!this.paused) return 0;
    const held = this.waiters.size;
    this.paused = false;
    this.wake();
    for (const w of this.waiters) this.arm(w);
    return held;
  }

  /** The pause outlived --max-pause: what it held gets 503, new requests flow. Returns how many. */
  expire(): number {
    if (!this.paused) return 0;
    this.paused = false;
    const held = [...this.waiters];
    this.waiters.clear();
    for (const w of held) w.reject(new PauseExpiredError());
    return held.length;
  }

  markDown(target: Target, reason: SuspectReason): void {
    if (!this.targets.includes(target) && !this.canary?.targets.includes(target)) return;
    if (!this.down.has(target.id)) this.onSuspect?.(target, reason);
    this.down.set(target.id, Date.now() + DOWN_MS);
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiters) { clearTimeout(w.timer); w.reject(new StoppingError()); }
    this.waiters.clear();
  }

  private wake(): void {
    if (this.paused) return;
    for (const w of this.waiters) {
      const t = this.pick(w.toCanary);
      if (!t) return;
      clearTimeout(w.timer);
      this.waiters.delete(w);
      w.resolve(t);
    }
  }
}
