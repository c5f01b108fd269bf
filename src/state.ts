// A state that changes only along allowed moves, and logs each one as {from, to}: the log
// then reads as the object's life, and a move the design does not allow is a bug that
// throws where it happens instead of surfacing later as a generation nobody stops.
import type { Logger } from './log.js';

export type Moves<S extends string> = { readonly [K in S]: readonly S[] };

export class StateMachine<S extends string> {
  constructor(
    private current: S,
    private readonly moves: Moves<S>,
    private readonly log: Logger,
    private readonly message: string,
    private readonly level: 'info' | 'debug' = 'info',
  ) {}

  get state(): S {
    return this.current;
  }

  /** Moves to `to`; staying put is allowed and silent. */
  to(to: S): void {
    const from = this.current;
    if (to === from) return;
    if (!this.moves[from].includes(to)) throw new Error(`${this.message}: ${from} → ${to} is not an allowed move`);
    this.log[this.level]({ from, to }, this.message);
    this.current = to;
  }

  /** Whether `to` is reachable in one move from here (or is where we are). */
  can(to: S): boolean {
    return to === this.current || this.moves[this.current].includes(to);
  }
}
