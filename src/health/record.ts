// One serving instance's health as its checks see it: --health-fall consecutive failures
// take it out of rotation, --health-rise consecutive passes bring it back. Pure: the monitor
// feeds it results and acts on the moves it reports.

export type Health = 'healthy' | 'unhealthy';

export class HealthRecord {
  inRotation = true;
  /** When it last left rotation (ms since the epoch); undefined while in rotation. */
  outSince: number | undefined;
  /** The last failure, while it counts (until a pass). */
  reason: string | undefined;
  private fails = 0;
  private passes = 0;

  constructor(private readonly fall: number, private readonly rise: number) {}

  /** Returns true when this failure takes the instance out of rotation. */
  fail(reason: string, now: number): boolean {
    this.passes = 0;
    this.reason = reason;
    if (!this.inRotation || ++this.fails < this.fall) return false;
    this.inRotation = false;
    this.outSince = now;
    return true;
  }

  /** Returns true when this pass brings the instance back into rotation. */
  pass(): boolean {
    this.fails = 0;
    if (this.inRotation) { this.reason = undefined; return false; }
    if (++this.passes < this.rise) return false;
    this.inRotation = true;
    this.outSince = undefined;
    this.reason = undefined;
    this.passes = 0;
    return true;
  }

  /** Between verdicts: some failures (or, out of rotation, some passes) but not enough yet. */
  get unsettled(): boolean {
    return this.inRotation ? this.fails > 0 : this.passes > 0;
  }

  get health(): Health {
    return this.inRotation ? 'healthy' : 'unhealthy';
  }
}
