// X-Request-ID: every client request gets one, so a line of the access log, the backend's own
// log and a client's report can be matched. Only a peer trusted with X-Forwarded-*
// (--trust-proxy) may name it; anyone else could otherwise pass as another request.
import { randomUUID } from 'node:crypto';

/**
 * A new request ID. randomUUID (from a cache of random bytes refilled in bulk) measured
 * 0.16–0.3 µs here, a random per-process prefix and a counter 0.03–0.06 µs: the difference is
 * under 1 % of what the raw engine spends on a request, and a UUID is the form log tools and
 * frameworks expect of a request ID (and no one can guess the next one).
 */
export function newRequestId(): string {
  return randomUUID();
}
