// The one place that decides what a client sees when the proxy, not the backend, fails.
import { HotproxyError } from '../errors.js';
import type { Target } from '../ipc.js';
import type { Router } from './router.js';

export type ProxyStatus = 502 | 503 | 504;

/** How often a request that may be sent again is tried in all (see isRetryable). */
export const MAX_ATTEMPTS = 3;

const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'E_UPSTREAM_TIMEOUT', 'E_UPSTREAM_UNHEALTHY']);

export function statusFor(err: unknown): ProxyStatus {
  const code = (err as { code?: string } | null)?.code;
  if (err instanceof HotproxyError && (err.code === 'E_NO_ROUTE' || err.code === 'E_PAUSE_EXPIRED' || err.code === 'E_STOPPING')) return 503;
  if (code !== undefined && TIMEOUT_CODES.has(code)) return 504;
  return 502;
}

const BODIES: Record<ProxyStatus, string> = {
  502: '502 Bad Gateway\n',
  503: '503 Service Unavailable\n',
  504: '504 Gateway Timeout\n',
};

export function bodyFor(status: ProxyStatus): string {
  return BODIES[status];
}

/**
 * Errors that happened before the backend could have answered: a connection that was refused,
 * or reset or closed while it was being reused (the raw engine's E_UPSTREAM_CLOSED; Node's
 * http client says ECONNRESET). An idempotent request without a body can be sent again
 * safely after these, and only if no answer byte reached the client yet (the callers check).
 */
const RETRYABLE_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'E_UPSTREAM_CLOSED', 'E_UPSTREAM_UNHEALTHY']);

export function isRetryable(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code !== undefined && RETRYABLE_CODES.has(code);
}

/**
 * Whether a retryable request (idempotent, no body, nothing answered yet) that failed with
 * `err` on its `attempt`th try goes again. A silent backend gets one more try, elsewhere
 * (the caller finds another instance, or answers 504): each try may cost a whole timeout.
 */
export function mayRetry(err: unknown, attempt: number): boolean {
  if (isTimeout(err)) return attempt < 2;
  if (isBacklogFull(err)) return attempt <= BACKLOG_RETRIES;
  // A refused connect sent nothing, and its instance is skipped from then on (markDown): a
  // backend that died mid-request gives a reset, then refusals until the master has replaced it,
  // and those must not use up the tries before a live instance is there.
  if (isRefused(err)) return attempt < 2 * MAX_ATTEMPTS;
  return attempt < MAX_ATTEMPTS && isRetryable(err);
}

export function isTimeout(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === 'E_UPSTREAM_TIMEOUT';
}

/**
 * The backend's accept queue was full: a unix socket refuses such a connect at once (EAGAIN)
 * where TCP would have retried the SYN. Nothing was sent; the same instance takes the
 * connection a moment later (measured: a thousand connects at once against a Node backend,
 * whose own listen() sets a queue of 511, failed tens of them).
 */
export function isBacklogFull(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === 'EAGAIN';
}

/** How long to wait before connecting again after isBacklogFull, for the `n`th time (1-based): 2..~200 ms with jitter. */
export function backlogDelayMs(n: number): number {
  return Math.min(200, 2 * 2 ** Math.min(n, 7)) * (0.5 + Math.random() / 2);
}

/** Connects tried again after isBacklogFull before the connection counts as failed (about 3 s in all). */
export const BACKLOG_RETRIES = 20;

/** The backend is not there at all (crashed, or its socket is gone). */
export function isRefused(err: unknown): boolean {
  const code = (err as { code?: string; cause?: { code?: string } } | null)?.code;
  return code === 'ECONNREFUSED' || code === 'ENOENT';
}

/**
 * What happens after a request failed on `target` with `err`: the router learns what the
 * failure says about the instance (the master hears of it too), and the answer says where
 * the request goes again — `route` (wherever the router sends it next), another target (a
 * silent backend's one more try goes elsewhere), or undefined: the client gets the error.
 * `resendable`: idempotent, no body, and no byte of an answer sent yet.
 */
export function afterFailure(router: Router, target: Target, err: unknown, attempt: number, resendable: boolean): Target | 'route' | undefined {
  const timeout = isTimeout(err);
  if (isRefused(err)) router.markDown(target, 'refused');
  else if (timeout) router.markDown(target, 'timeout');
  if (!resendable || !mayRetry(err, attempt)) return undefined;
  return timeout ? router.other(target) : 'route';
}
