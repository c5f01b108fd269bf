// The worker's view of where traffic goes. Invariant: once `set` returns, `pick` never
// hands out a target of a generation that is no longer routed — that is what lets the
// master drain and stop the old generation as soon as every worker has acknowledged.
// While paused (`hotproxy pause`) nothing is handed out: every request waits, without its
// --queue-timeout, until resume() releases them in the order they came, or expire() (past
// --max-pause) fails them. A request already sent that must go once more elsewhere (a silent
// backend: other()) is in-flight work the pause waits for, so other() still answers.
import { NoRouteError, PauseExpiredError, StoppingError } from '../errors.js';
import type { Route, Target } from '../ipc.js';

interface Waiter {
  resolve(t: Target): void;
  reject(e: Error): void;
  /** The queue timeout; none while paused. */
  timer: NodeJS.Timeout | undefined;
  timeoutMs: number;
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
    this.down.clear();
    this.wake();
  }

  /** A target now, or undefined when requests must queue. Round robin. */
  pick(): Target | undefined {
    if (this.paused) return undefined;
    const n = this.targets.length;
    for (let i = 0; i < n; i++) {
      const t = this.targets[this.next++ % n]!;
      if (this.down.size === 0 || !this.isDown(t)) return t;
    }
    return undefined;
  }

  /** A routable target other than `t`, without waiting. */
  other(t: Target): Target | undefined {
    const n = this.targets.length;
    for (let i = 0; i < n; i++) {
      const o = this.targets[this.next++ % n]!;
      if (o.id !== t.id && !this.isDown(o)) return o;
    }
    return undefined;
  }

  private isDown(t: Target): boolean {
    const until = this.down.get(t.id);
    if (until === undefined) return false;
    if (Date.now() < until) return true;
    this.down.delete(t.id);
    return false;
  }

  /** A target as soon as one is routable, or NoRouteError after `timeoutMs`. */
  wait(timeoutMs: number): Promise<Target> {
    const t = this.pick();
    if (t) return Promise.resolve(t);
    if (this.closed) return Promise.reject(new StoppingError());
    return new Promise((resolve, reject) => {
      const w: Waiter = { resolve, reject, timer: undefined, timeoutMs };
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
    if (!this.targets.includes(target)) return;
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
      const t = this.pick();
      if (!t) return;
      clearTimeout(w.timer);
      this.waiters.delete(w);
      w.resolve(t);
    }
  }
}
