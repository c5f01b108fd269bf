// The hotproxy harness the bench shares (harness/hotproxy.js), for vitest: every test ends
// with whatever it started gone, and fails if anything outlived it.
import { afterEach } from 'vitest';
import { reapAll } from '../../harness/hotproxy.js';

export { CLI, Hotproxy, NODE_APP, ROOT, expectNothingLeft, fixture, runCli, startHotproxy } from '../../harness/hotproxy.js';
export type { LogLine, StartOptions } from '../../harness/hotproxy.js';

/** Kills whatever a test left running and fails the test if anything survives. */
export async function cleanup(): Promise<void> {
  const survivors = await reapAll();
  if (survivors.length) throw new Error(`processes outlived their test: ${survivors.join(', ')}`);
}

afterEach(cleanup);
