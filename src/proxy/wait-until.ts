// Polling for a worker-local condition (nothing in flight, no connections) with a deadline:
// the counts change from many places, so a 20 ms poll is simpler than wiring events to each.

/**
 * Resolves once `cond()` holds or `ms` have passed, whichever is first. The poll does not keep
 * the process alive unless `hold` says so (for work that must end before the process does).
 */
export function waitUntil(cond: () => boolean, ms: number, { hold = false, everyMs = 20 } = {}): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve) => {
    const tick = (): void => {
      if (cond() || Date.now() >= end) resolve();
      else if (hold) setTimeout(tick, everyMs);
      else setTimeout(tick, everyMs).unref();
    };
    tick();
  });
}
