/** Restart delays: 100 ms doubling to 10 s, back to the start after a long enough good run. */
export class Backoff {
  private next: number;
  private goodTimer: NodeJS.Timeout | undefined;

  constructor(private readonly min = 100, readonly max = 10_000, private readonly resetAfterMs = 10_000) {
    this.next = min;
  }

  /** The delay before the next attempt; each call doubles the one after. */
  take(): number {
    clearTimeout(this.goodTimer);
    const d = this.next;
    this.next = Math.min(this.next * 2, this.max);
    return d;
  }

  /** The thing is up; if it stays up for a while, forget past failures. */
  up(): void {
    clearTimeout(this.goodTimer);
    this.goodTimer = setTimeout(() => (this.next = this.min), this.resetAfterMs);
    this.goodTimer.unref();
  }

  cancel(): void {
    clearTimeout(this.goodTimer);
  }
}
