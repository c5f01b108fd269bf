// Giving memory back to the system. V8 returns heap pages it no longer needs only in a
// memory-reducing collection, which it starts when the process looks idle; a worker's sweep
// timer calls into JavaScript several times a second, so on Node 26 it never looks idle, and
// RSS stays at its peak long after, say, 10,000 connections went idle and were shed. The gc()
// that --expose-gc (the master starts workers with it) puts on the global takes a "last
// resort" flavour on the V8s that know it: every collection it takes, then the pages go back.
// Where gc() is missing nothing happens.

type Gc = (options?: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/** Collects all garbage and gives free heap pages back now; the milliseconds it took (0: not available). */
export function releaseMemory(): number {
  const gc = (globalThis as { gc?: Gc }).gc;
  if (typeof gc !== 'function') return 0;
  const t0 = performance.now();
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  return performance.now() - t0;
}
