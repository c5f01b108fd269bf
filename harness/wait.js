// Polling for the tests and the bench: wait for a condition rather than for a fixed time, so a
// slow, shared machine only makes things slower, never wrong.

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `check` until it returns a truthy value or the deadline passes. A throwing check counts
 * as "not yet" (a connection refused while a server starts); its last error goes in the timeout.
 * @template T
 * @param {() => T | Promise<T>} check
 * @param {string} what
 * @returns {Promise<NonNullable<T>>}
 */
export async function waitFor(check, what, timeoutMs = 15_000, intervalMs = 20) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(intervalMs);
  }
}
