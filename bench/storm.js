// Storms: keep-alive load while hotproxy is signalled about once a second — SIGHUP (swap storm:
// a new backend generation each time) or SIGUSR2 (upgrade storm: new proxy worker processes).
// Each storm runs twice — with the no-retry client, which counts every request that fails, and
// with autocannon, to show what a typical load tool reports for the same storm.
// One loop drives both; a storm kind says which signal, which log line ends one round, what to
// record per round and how to summarise, so the two stay comparable round for round.
import { performance } from 'node:perf_hooks';
import { fixture, startHotproxy } from '../harness/hotproxy.js';
import { firstAnswer, Load } from '../harness/load.js';
import { sleep } from '../harness/wait.js';
import { AutocannonLoad } from './lib/loadgen.js';
import { percentile } from './lib/report.js';
import * as M from '../dist/messages.js';

const NODE_APP = fixture('node-app.js');
const CONNECTIONS = 20;

/** Each storm client: firstSeen (pid -> when it first answered) and a stop() giving the report's counts. */
const CLIENTS = {
  'no-retry': (url) => {
    const load = new Load(url, CONNECTIONS);
    return {
      firstSeen: load.firstSeen,
      async stop() {
        const r = await load.stop();
        return {
          requests: r.ok + r.failed,
          ok: r.ok,
          failed: r.failed,
          errors: Object.fromEntries(r.errorCounts),
          byGen: Object.fromEntries([...r.byGen].sort((a, b) => a[0] - b[0])),
        };
      },
    };
  },
  autocannon: (url) => new AutocannonLoad(url, CONNECTIONS),
};

export const SWAP_STORM = {
  name: 'swap',
  signal: 'SIGHUP',
  countKey: 'hups',
  proxyWorkers: 1,
  send: (hp) => hp.reload(),
  done: (l) => l.msg === M.DEPLOYED,
  async round({ out, ok, t0, load }) {
    if (!ok) return { gen: out.gen, error: out.err ?? out.msg };
    // Swap latency: HUP until the client got its first answer from the new generation.
    const seen = await firstAnswer(load.firstSeen, out.pids, 10_000);
    return { gen: out.gen, deployMs: out.ms, swapMs: seen === undefined ? null : Math.round((seen - t0) * 10) / 10 };
  },
  summarise({ ready, rounds: swaps, stats }) {
    const ok = swaps.filter((s) => s.swapMs != null).map((s) => s.swapMs);
    const gens = Object.keys(stats.byGen).map(Number);
    return {
      deployed: swaps.filter((s) => !s.error).length,
      deployErrors: swaps.filter((s) => s.error).map((s) => `gen ${s.gen}: ${s.error}`),
      firstGen: ready.gen,
      lastGen: Math.max(...gens),
      gensSeen: gens.length,
      ...stats,
      swapP50Ms: percentile(ok, 50),
      swapMaxMs: ok.length ? Math.max(...ok) : null,
      swapsUnseen: swaps.filter((s) => !s.error && s.swapMs == null).length,
      deployP50Ms: percentile(swaps.filter((s) => !s.error).map((s) => s.deployMs), 50),
      swaps,
    };
  },
};

export const UPGRADE_STORM = {
  name: 'upgrade',
  signal: 'SIGUSR2',
  countKey: 'upgrades',
  // More than one worker, so handing connections over between workers is actually exercised.
  proxyWorkers: 2,
  send: (hp) => hp.upgrade(),
  done: (l) => l.msg === M.UPGRADED,
  round({ out, ok, t0 }) {
    const wallMs = Math.round((performance.now() - t0) * 10) / 10;
    return ok ? { workers: out.workers, previous: out.previous, ms: out.ms, wallMs } : { error: out.err ?? out.msg, wallMs };
  },
  // Retirement runs after `Upgraded`; wait for it under load, since handing live keep-alive
  // connections over is what this storm is meant to put under pressure.
  async settle({ hp, rounds }) {
    const old = new Set(rounds.flatMap((r) => r.previous ?? []));
    const deadline = Date.now() + 15_000;
    while (retiredOf(hp, old).length < old.size && Date.now() < deadline) await sleep(50);
  },
  async summarise({ hp, ready, rounds, stats, load }) {
    const ok = rounds.filter((r) => !r.error);
    const old = new Set(ok.flatMap((r) => r.previous));
    const handovers = hp.logs.filter((l) => l.msg === M.CONNECTIONS_HANDED_OVER && old.has(l.pid));
    // Ask the master itself rather than trusting the log for "still the same at the end".
    const status = await hp.status();
    const lastBackends = status?.generations?.find((g) => g.state === 'active')?.pids ?? hp.activePids();
    const answered = [...load.firstSeen.keys()];
    const masterLines = hp.logs.filter((l) => l.component === 'master');
    return {
      upgraded: ok.length,
      upgradeErrors: rounds.filter((r) => r.error).map((r) => r.error),
      ...stats,
      upgradeP50Ms: percentile(ok.map((r) => r.ms), 50),
      upgradeMaxMs: ok.length ? Math.max(...ok.map((r) => r.ms)) : null,
      handedOver: handovers.reduce((n, l) => n + (l.handedOver ?? 0), 0),
      // Connections a retiring worker could not move (mid-request, tunnels) and closed itself.
      notHandedOver: handovers.reduce((n, l) => n + (l.left ?? 0), 0),
      workersRetired: retiredOf(hp, old).length,
      workersReplaced: old.size,
      readyBackends: ready.pids,
      lastBackends,
      answeredBackends: answered,
      backendsUnchanged: sameSet(ready.pids, lastBackends) && answered.every((p) => ready.pids.includes(p)),
      masterPid: hp.pid,
      masterUnchanged: hp.proc.alive && status?.pid === hp.pid && masterLines.every((l) => l.pid === hp.pid),
      statusOk: status !== undefined,
      finalWorkers: status?.workers?.map((w) => w.pid) ?? null,
      rounds,
    };
  },
};

/** Runs `kind` with each client; quick mode: 5 signals, full: 20. */
export async function runStorm(kind, { quick, log = () => {} }) {
  const count = quick ? 5 : 20;
  const runs = [];
  for (const client of ['no-retry', 'autocannon']) {
    log(`${kind.name} storm: ${client} client, ${count} × ${kind.signal}`);
    runs.push(await stormOnce(kind, client, count, log));
  }
  return { signal: kind.signal, [kind.countKey]: count, connections: CONNECTIONS, proxyWorkers: kind.proxyWorkers, runs };
}

async function stormOnce(kind, client, count, log) {
  const hp = await startHotproxy([], [process.execPath, NODE_APP], { proxyWorkers: kind.proxyWorkers });
  try {
    const ready = hp.find(M.READY);
    const load = CLIENTS[client](hp.url);
    const rounds = [];
    let stats;
    try {
      await sleep(1000); // every connection open and busy before the first signal
      for (let i = 0; i < count; i++) {
        const t0 = performance.now();
        // Wait for this round to finish: hotproxy coalesces signals that arrive meanwhile, so
        // sending on a bare timer would measure fewer rounds than were asked for.
        const out = await kind.send(hp);
        const ok = kind.done(out);
        if (!ok) log(`${kind.name} storm: ${out.msg} ${out.err ?? ''}`);
        rounds.push(await kind.round({ out, ok, t0, load }));
        // About one signal per second, never closer than 1 s apart.
        const rest = 1000 - (performance.now() - t0);
        if (rest > 0) await sleep(rest);
      }
      await kind.settle?.({ hp, rounds });
      await sleep(1000); // the last old generation / workers drain under load too
    } finally {
      stats = await load.stop();
    }
    return { client, [kind.countKey]: count, ...(await kind.summarise({ hp, ready, rounds, stats, load })) };
  } finally {
    await hp.stop();
  }
}


const retiredOf = (hp, old) => hp.logs.filter((l) => l.msg === M.PROXY_WORKER_RETIRED && old.has(l.workerPid));
const sameSet = (a, b) => a.length === b.length && a.every((x) => b.includes(x));
