// The same differential run while hotproxy deploys and upgrades itself: keep-alive lanes that
// never retry move big uploads and downloads (and the random mix) through 10 HUPs and 10 USR2s.
// Every exchange must succeed and match the direct answer.
import { describe, expect, it } from 'vitest';
import { stormRequest } from './corpus.js';
import { randomRun, type Compared } from './differential.js';
import { MODES, portFor, SEED, startDirect, startProxied } from './harness.js';
import { waitFor } from '../helpers/wait.js';
import { unprocessed } from './h2-client.js';

const EVENTS = 10;
/** Exchanges that must complete after each event before the next. */
const BETWEEN = 16;

describe.each(MODES)('$name', (mode) => {
  it(`every exchange through ${EVENTS} HUPs and ${EVENTS} USR2s is answered exactly as the backend does (seed ${SEED})`, async () => {
    const [port, hp] = await Promise.all([startDirect(), startProxied(mode)]);
    unprocessed.count = 0;
    let stop = false;
    const live: Compared = { exchanges: 0, problems: [] };
    const lanes = randomRun(port, portFor(mode, hp), {
      seed: SEED, exchanges: Infinity, lanes: 8, via: mode, make: stormRequest, live, until: () => stop, noPipelining: mode.noPipelining,
      // tcp mode pins a connection to its generation: lanes reconnect so old ones can drain.
      maxReuse: mode.wire ? 10 : 40,
    });
    const outcomes: string[] = [];
    try {
      for (let i = 0; i < EVENTS; i++) {
        for (const event of [() => hp.reload(), () => hp.upgrade()]) {
          const before = live.exchanges;
          outcomes.push((await event()).msg);
          await waitFor(() => live.exchanges >= before + BETWEEN, 'exchanges after the event', 30_000);
        }
      }
    } finally {
      stop = true;
    }
    const run = await lanes;
    console.log(`storm, ${mode.name}, ${process.version}: ${run.exchanges} exchanges through ${EVENTS} HUPs and ${EVENTS} USR2s, ${run.problems.length} failed or differ${mode.client === 'h2' ? `, ${unprocessed.count} declared unprocessed by GOAWAY and sent again` : ''} (seed ${SEED})`);
    expect(outcomes).toEqual(Array.from({ length: EVENTS }, () => ['Deployed', 'Upgraded']).flat());
    expect(run.problems.slice(0, 20), `seed ${SEED}: ${run.problems.length} of ${run.exchanges} exchanges failed or differ; hotproxy's warnings:\n${hp.tail(40, 40)}`).toEqual([]);
    expect(run.exchanges).toBeGreaterThanOrEqual(EVENTS * 2 * BETWEEN);
    // Only h2 has such a thing, and only a few per upgrade (streams already on their way).
    expect(unprocessed.count).toBeLessThanOrEqual(mode.client === 'h2' ? EVENTS * 4 : 0);
    const started = Date.now();
    const code = await hp.stop();
    expect(code, `hotproxy's exit after SIGTERM (${Date.now() - started} ms), its last lines:\n${hp.tail(60)}`).toBe(0);
  });
});
