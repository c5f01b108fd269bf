// The control socket speaks newline-delimited JSON: one request, one response.
export type ControlCommand = 'status' | 'reload' | 'rollback' | 'promote' | 'upgrade' | 'stop' | 'pause' | 'resume';

export type ControlRequest =
  /** rollback: back to the previous generation (the warm one at once), answered once it serves or failed. */
  | { cmd: 'status' | 'upgrade' | 'stop' | 'rollback' }
  /** promote: the canary takes all traffic; answered once the switch is done. */
  | { cmd: 'promote' }
  /**
   * Without `command` and `env`: a new generation of the current command (as HUP). With either:
   * that command (default: the current one) with exactly these variables added.
   */
  | { cmd: 'reload'; command?: string[]; env?: Record<string, string>; canary?: number }
  /** Hold new requests; answered once nothing is in flight. The pause ends by itself after `maxPauseMs`. */
  | { cmd: 'pause'; maxPauseMs?: number }
  /** Release the held requests, in the order they arrived. */
  | { cmd: 'resume' };

export type ControlResponse = ({ ok: true } | { ok: false; error: string }) & Record<string, unknown>;

export const CONTROL_SOCKET = 'control.sock';

/** `hotproxy pause` without --max-pause. */
export const DEFAULT_MAX_PAUSE_MS = 30_000;
