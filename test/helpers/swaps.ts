// The assertion most backend tests share: swaps under keep-alive load fail no request.
import { expect } from 'vitest';
import type { Hotproxy } from './hotproxy.js';
import { Load } from './load.js';
import { waitFor } from './wait.js';
import { DEPLOYED } from '../../src/messages.js';

/** `swaps` HUPs under 10 no-retry connections; each new generation serves `perGen` requests first. */
export async function swapsWithoutFailures(hp: Hotproxy, swaps: number, perGen = 10): Promise<void> {
  const load = new Load(hp.url, 10);
  await waitFor(() => load.result.ok > 20, 'load to start');
  for (let i = 0; i < swaps; i++) {
    const outcome = await hp.reload();
    expect(outcome.msg).toBe(DEPLOYED);
    const pid = (outcome.pids as number[])[0]!;
    await waitFor(() => load.servedBy(pid) > perGen, 'traffic on the new generation');
  }
  const result = await load.stop();
  expect(result.errors).toEqual([]);
  expect(result.failed).toBe(0);
}
