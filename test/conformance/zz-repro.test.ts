import { it, expect } from 'vitest';
import { startProxied, startDirect, MODES, portFor } from './harness.js';
import { randomRun } from './differential.js';
it('repro', async () => {
  const mode = MODES.find((m) => m.client === (process.env.CL ?? 'https'))!;
  const [port, hp] = await Promise.all([startDirect(), startProxied(mode, ['--access-log', '/tmp/acc.log'])]);
  const run = await randomRun(port, portFor(mode, hp), { seed: Number(process.env.SEED), exchanges: 2000, lanes: 8, via: mode });
  console.log(run.problems.slice(0, 10), run.problems.length);
  console.log(hp.logs.filter((l: any) => l.level >= 40 || /rror/.test(l.msg)).slice(0, 10));
  console.log(String(hp.stderr).split("\n").filter((l) => /TLS/.test(l)).slice(0, 30).join("\n"));
  expect(await hp.stop()).toBe(0);
}, 300000);
