// Polling for a worker-local condition (nothing in flight, no connections) with a deadline:
// the counts change from many places, so a 20 ms poll is simpler than wiring events to each.

/** Resolves once `cond()` holds or `ms` have passed, whichever is first. */
export function waitUntil(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve) => {
    const tick = (): void => {
      if (cond() || Date.now() >= end) resolve();
      else setTimeout(tick, 20).unref();
    };
    tick();
  });
}
