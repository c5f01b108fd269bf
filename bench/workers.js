// --proxy-workers N on a small machine: not throughput (the cores are already shared by load
// generator, proxy and backend), but how evenly the kernel spreads accepted connections and
// the work among N workers listening on the same socket. For each N: connections per worker
// after opening many keep-alive ones, and each worker's share of the CPU under wrk.
import { fileURLToPath } from 'node:url';
import { startHotproxy } from '../harness/hotproxy.js';
import { cpuMicros } from '../harness/procs.js';
import { fdLimit, idleClient } from './idle.js';
import { measure } from './lib/loadgen.js';

const BACKEND = fileURLToPath(new URL('./backend.js', import.meta.url));

export async function runWorkers({ quick, tool, log = () => {} }) {
  const out = [];
  const n = Math.min(quick ? 1_000 : 4_000, fdLimit() - 1_000);
  for (const workers of [2, 4]) {
    const hp = await startHotproxy([], [process.execPath, BACKEND], { proxyWorkers: workers });
    const sockets = [];
    try {
      log(`workers: ${workers} proxy workers, ${n} keep-alive connections`);
      for (let i = 0; i < n; i += 250) sockets.push(...(await Promise.all(Array.from({ length: Math.min(250, n - i) }, () => idleClient(hp.port, { count: 0 })))));
      const connections = ((await hp.status())?.workers ?? []).map((w) => w.connections);
      for (const s of sockets.splice(0)) s.destroy();
      const pids = hp.workerPids();
      const before = pids.map((p) => cpuMicros([p]));
      const m = await measure(tool, hp.url, { seconds: quick ? 5 : 10, connections: 200 });
      const cpu = pids.map((p, i) => cpuMicros([p]) - before[i]);
      const total = cpu.reduce((a, b) => a + b, 0);
      out.push({ workers, connectionsOpened: n, connections, cpuShare: cpu.map((c) => c / total), requests: m.requests, rps: m.rps });
    } finally {
      for (const s of sockets) s.destroy();
      await hp.stop();
    }
  }
  return out;
}
