// Every answer exactly as the backend gave it: the fixed corpus and a seeded random run, each
// request sent directly and through hotproxy, in every mode and engine that ships.
import { describe, expect, it } from 'vitest';
import { fixedCorpus } from './corpus.js';
import { compareCase, randomRun } from './differential.js';
import { EXCHANGES, limit, MODES, portFor, SEED, startDirect, startProxied } from './harness.js';

describe.each(MODES)('$name', (mode) => {
  it('answers every request of the fixed corpus exactly as the backend does', async () => {
    const [port, hp] = await Promise.all([startDirect(), startProxied(mode)]);
    const corpus = fixedCorpus();
    const problems = (await limit(4, corpus.map((c) => () => compareCase(port, portFor(mode, hp), c, mode)))).flat();
    console.log(`corpus, ${mode.name}, ${process.version}: ${corpus.length} cases, ${problems.length} problems`);
    expect(problems).toEqual([]);
    expect(await hp.stop()).toBe(0);
  });

  it(`answers ${EXCHANGES} seeded random exchanges exactly as the backend does (seed ${SEED})`, async () => {
    const [port, hp] = await Promise.all([startDirect(), startProxied(mode)]);
    const run = await randomRun(port, portFor(mode, hp), { seed: SEED, exchanges: EXCHANGES, lanes: 8, via: mode });
    console.log(`random, ${mode.name}, ${process.version}: ${run.exchanges} exchanges, ${run.problems.length} differ (seed ${SEED})`);
    // The first difference goes in the message's first line: that is what CI's summary shows.
    const first = run.problems[0]?.replace(/\s+/g, ' ').slice(0, 600);
    expect(run.problems.slice(0, 20), `seed ${SEED}: ${run.problems.length} of ${run.exchanges} exchanges differ; the first: ${first}`).toEqual([]);
    expect(run.exchanges).toBe(EXCHANGES);
    expect(await hp.stop()).toBe(0);
  });
});
