// The worker's view of where traffic goes. Invariant: once `set` returns, `pick` never
// hands out a target of a generation that is no longer routed — that is what lets the
// master drain and stop the old generation as soon as every worker has acknowledged.
import { NoRouteError, StoppingError } from '../errors.js';
import type { Route, Target } from '../ipc.js';

interface Waiter {
  resolve(t: Target): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

export class Router {
  private targets: Target[] = [];
  private next = 0;
  /** Targets this worker saw refuse a connection; skipped until the master's next route. */
  private down = new Set<string>();
  private waiters = new Set<Waiter>();
  private closed = false;

  set(route: Route): void {
    this.targets = route.targets;
    this.down.clear();
    this.wake();
  }

  /** A target now, or undefined when requests must queue. Round robin. */
  pick(): Target | undefined {
    const n = this.targets.length;
    for (let i = 0; i < n; i++) {
      const t = this.targets[this.next++ % n]!;
      if (this.down.size === 0 || !this.down.has(t.id)) return t;
    }
    return undefined;
  }

  /** A target as soon as one is routable, or NoRouteError after `timeoutMs`. */
  wait(timeoutMs: number): Promise<Target> {
    const t = this.pick();
    if (t) return Promise.resolve(t);
    if (this.closed) return Promise.reject(new StoppingError());
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        resolve, reject,
        timer: setTimeout(() => { this.waiters.delete(w); reject(new NoRouteError()); }, timeoutMs),
      };
      this.waiters.add(w);
    });
  }

  markDown(target: Target): void {
    if (this.targets.includes(target)) this.down.add(target.id);
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiters) { clearTimeout(w.timer); w.reject(new StoppingError()); }
    this.waiters.clear();
  }

  private wake(): void {
    for (const w of this.waiters) {
      const t = this.pick();
      if (!t) return;
      clearTimeout(w.timer);
      this.waiters.delete(w);
      w.resolve(t);
    }
  }
}
