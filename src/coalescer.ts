/**
 * Runs a task one at a time. Invariant: at most one run in progress and one queued; every
 * request made while a run is in progress shares the single queued run (and its outcome).
 */
export class Coalescer<T> {
  private running: Promise<T> | undefined;
  private queued: Promise<T> | undefined;

  constructor(private task: () => Promise<T>) {}

  request(): Promise<T> {
    if (this.queued) return this.queued;
    if (!this.running) return this.begin();
    const next = (): Promise<T> => {
      this.queued = undefined;
      return this.begin();
    };
    return (this.queued = this.running.then(next, next));
  }

  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Resolves once nothing runs and nothing is queued. */
  async settled(): Promise<void> {
    for (let p = this.queued ?? this.running; p; p = this.queued ?? this.running) await p.catch(() => {});
  }

  private begin(): Promise<T> {
    const p: Promise<T> = this.task().finally(() => {
      if (this.running === p) this.running = undefined;
    });
    return (this.running = p);
  }
}
