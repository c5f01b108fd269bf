// `hotproxy pause` / `resume`: hold new requests while in-flight ones finish, so a script can
// migrate a database with nothing running against it, then release them in order.
//
// A pause always ends: a script that died mid-migration must not leave the service down. At
// --max-pause it ends by itself — what it held until then gets 503 (those clients have waited
// the whole time already; sending them on now would run them against a half-migrated
// database), new requests flow again, and the log says so (PAUSE_EXPIRED). A second pause
// while one is on renews the deadline from now and waits for nothing in flight like the first.
import type { Logger } from '../log.js';
import { StateMachine, type Moves } from '../state.js';
import type { ProxyWorkers } from './proxy-workers.js';
import { PAUSED, PAUSE_EXPIRED, PAUSING, RESUMED } from '../messages.js';

/** pausing: requests are held, some are still in flight; paused: nothing is in flight. */
export type PauseState = 'flowing' | 'pausing' | 'paused';

const MOVES: Moves<PauseState> = {
  flowing: ['pausing'],
  pausing: ['paused', 'flowing'],
  paused: ['pausing', 'flowing'],
};

export type PauseResult =
  | { ok: true; since: string; until: string; waitedMs: number }
  | { ok: false; error: string };

export interface ResumeResult {
  ok: true;
  /** False: there was no pause to end. */
  wasPaused: boolean;
  /** Requests (tcp: connections) that were held. */
  held: number;
  pausedMs: number;
}

/** What `hotproxy status` shows of a pause. */
export interface PauseStatus {
  state: Exclude<PauseState, 'flowing'>;
  since: string;
  until: string;
}

export class Pauser {
  private machine: StateMachine<PauseState>;
  private since = 0;
  private until = 0;
  private maxPauseMs = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Aborted when the pause ends: whoever waits for nothing in flight stops waiting. */
  private ended = new AbortController();
  private endedBy: 'expired' | 'resumed' | 'stopping' = 'resumed';
  private log: Logger;

  constructor(private workers: ProxyWorkers, log: Logger) {
    this.log = log.child({ component: 'master' });
    this.machine = new StateMachine<PauseState>('flowing', MOVES, this.log, 'Pause state');
  }

  get state(): PauseState {
    return this.machine.state;
  }

  /** How long the pause may still last (0: none is on). */
  leftMs(): number {
    return this.state === 'flowing' ? 0 : Math.max(0, this.until - Date.now());
  }

  status(): PauseStatus | null {
    const state = this.state;
    if (state === 'flowing') return null;
    return { state, since: new Date(this.since).toISOString(), until: new Date(this.until).toISOString() };
  }

  /** Holds new requests; resolves once nothing is in flight, or with why not (the pause ended first). */
  async pause(maxPauseMs: number): Promise<PauseResult> {
    const t0 = Date.now();
    if (this.state === 'flowing') { this.since = t0; this.ended = new AbortController(); }
    this.until = t0 + maxPauseMs;
    this.maxPauseMs = maxPauseMs;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.end('expired'), maxPauseMs);
    this.machine.to('pausing');
    this.log.info({ maxPauseMs, until: new Date(this.until).toISOString() }, PAUSING);
    const ended = this.ended.signal;
    const idle = await this.workers.hold(ended);
    if (!idle || ended.aborted) {
      const why = { expired: `--max-pause (${maxPauseMs} ms) passed; what it held got 503`, resumed: 'it was resumed', stopping: 'hotproxy is stopping' }[this.endedBy];
      return { ok: false, error: `the pause ended before nothing was in flight: ${why}` };
    }
    const waitedMs = Date.now() - t0;
    if (this.state === 'pausing') {
      this.machine.to('paused');
      this.log.info({ waitedMs }, PAUSED);
    }
    return { ok: true, since: new Date(this.since).toISOString(), until: new Date(this.until).toISOString(), waitedMs };
  }

  /** Releases the held requests in the order they came. Without a pause, nothing to do. */
  resume(): Promise<ResumeResult> {
    return this.end('resumed');
  }

  /** Stopping: what is held is released, to be served while the workers drain. */
  stop(): Promise<ResumeResult> {
    return this.end('stopping');
  }

  /** `expired`: --max-pause passed; what is held gets 503. */
  private async end(by: 'expired' | 'resumed' | 'stopping'): Promise<ResumeResult> {
    if (this.state === 'flowing') return { ok: true, wasPaused: false, held: 0, pausedMs: 0 };
    clearTimeout(this.timer);
    const pausedMs = Date.now() - this.since;
    const expired = by === 'expired';
    this.machine.to('flowing');
    this.endedBy = by;
    this.ended.abort();
    const held = await this.workers.release(expired);
    if (expired) this.log.warn({ held, pausedMs, maxPauseMs: this.maxPauseMs }, PAUSE_EXPIRED);
    else this.log.info({ held, pausedMs }, RESUMED);
    return { ok: true, wasPaused: true, held, pausedMs };
  }
}
