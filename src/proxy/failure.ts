// The one place that decides what a client sees when the proxy, not the backend, fails.
import { HotproxyError } from '../errors.js';

export type ProxyStatus = 502 | 503 | 504;

/** How often a request that may be sent again is tried in all (see isRetryable). */
export const MAX_ATTEMPTS = 3;

const TIMEOUT_CODES = new Set(['ETIMEDOUT']);

export function statusFor(err: unknown): ProxyStatus {
  const code = (err as { code?: string } | null)?.code;
  if (err instanceof HotproxyError && (err.code === 'E_NO_ROUTE' || err.code === 'E_STOPPING')) return 503;
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
const RETRYABLE_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'E_UPSTREAM_CLOSED']);

export function isRetryable(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code !== undefined && RETRYABLE_CODES.has(code);
}

/** The backend is not there at all (crashed, or its socket is gone). */
export function isRefused(err: unknown): boolean {
  const code = (err as { code?: string; cause?: { code?: string } } | null)?.code;
  return code === 'ECONNREFUSED' || code === 'ENOENT';
}
