// Swap storm: keep-alive load while hotproxy deploys a new generation about once a second.
// Run twice — with the no-retry client, which counts every request that fails, and with
// autocannon, to show what a typical load tool reports for the same storm.
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { startHotproxy } from './lib/hotproxy.js';
import { AutocannonLoad } from './lib/loadgen.js';
import { NoRetryLoad } from './lib/noretry.js';
import { sleep } from './lib/procs.js';
import { percentile } from './lib/report.js';

const NODE_APP = fileURLToPath(new URL('../test/fixtures/node-app.js', import.meta.url));
const CONNECTIONS = 20;

export async function runStorm({ quick, log = () => {} }) {
  const hups = quick ? 5 : 20;
  const runs = [];
  for (const client of ['no-retry', 'autocannon']) {
    log(`storm: ${client} client, ${hups} HUPs`);
    runs.push(await stormOnce(client, hups, log));
  }
  return { hups, connections: CONNECTIONS, runs };
}

async function stormOnce(client, hups, log) {
  const hp = await startHotproxy([], [process.execPath, NODE_APP]);
  try {
    const firstGen = hp.logs.find((l) => l.msg === 'Ready').gen;
    const load = client === 'no-retry' ? new NoRetryLoad(hp.url, CONNECTIONS) : new AutocannonLoad(hp.url, CONNECTIONS);
    const swaps = [];
    let stats;
    try {
      await sleep(1000); // every connection open and busy before the first swap
      for (let i = 0; i < hups; i++) {
        const from = hp.logs.length;
        const t0 = performance.now();
        hp.hup();
        const out = await hp.waitForLog((l) => l.msg === 'Deployed' || String(l.msg).startsWith('Deploy failed'), 40_000, from);
        if (out.msg !== 'Deployed') {
          swaps.push({ gen: out.gen, error: out.err ?? out.msg });
          log(`storm: gen ${out.gen}: ${out.msg} ${out.err ?? ''}`);
        } else {
          // Swap latency: HUP until the client got its first answer from the new generation.
          const seen = await firstAnswer(load, out.pids, 10_000);
          swaps.push({ gen: out.gen, deployMs: out.ms, swapMs: seen === undefined ? null : Math.round((seen - t0) * 10) / 10 });
        }
        // About one HUP per second, never closer than 1 s apart.
        const rest = 1000 - (performance.now() - t0);
        if (rest > 0) await sleep(rest);
      }
      await sleep(1000); // the last old generation drains under load too
    } finally {
      stats = await load.stop();
    }
    const ok = swaps.filter((s) => s.swapMs != null).map((s) => s.swapMs);
    const gens = Object.keys(stats.byGen).map(Number);
    return {
      client,
      hups,
      deployed: swaps.filter((s) => !s.error).length,
      deployErrors: swaps.filter((s) => s.error).map((s) => `gen ${s.gen}: ${s.error}`),
      firstGen,
      lastGen: Math.max(...gens),
      gensSeen: gens.length,
      ...stats,
      swapP50Ms: percentile(ok, 50),
      swapMaxMs: ok.length ? Math.max(...ok) : null,
      swapsUnseen: swaps.filter((s) => !s.error && s.swapMs == null).length,
      deployP50Ms: percentile(swaps.filter((s) => !s.error).map((s) => s.deployMs), 50),
      swaps,
    };
  } finally {
    await hp.stop();
  }
}

/** performance.now() of the first response any of `pids` gave, or undefined after `timeoutMs`. */
async function firstAnswer(load, pids, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const times = pids.map((p) => load.firstSeen.get(p)).filter((t) => t !== undefined);
    if (times.length) return Math.min(...times);
    if (Date.now() > deadline) return undefined;
    await sleep(5);
  }
}
