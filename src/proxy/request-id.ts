// X-Request-ID: every client request gets one, so a line of the access log, the backend's own
// log and a client's report can be matched. Only a peer trusted with X-Forwarded-*
// (--trust-proxy) may name it; anyone else could otherwise pass as another request.
import { randomUUID } from 'node:crypto';

/**
 * A new request ID. randomUUID draws from a cache of random bytes it refills in bulk, so it
 * costs about as much as a counter with a per-process prefix would (see README, Performance),
 * and its form is the one log tools and frameworks expect of a request ID.
 */
export function newRequestId(): string {
  return randomUUID();
}
