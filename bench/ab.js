// A/B: what a change did to proxy CPU per request, on a machine too noisy for one run to say.
// This checkout's build and another one (`--base DIR`, e.g. a git worktree of the commit before,
// built) and HAProxy take turns, round after round, against the same backend, so a slow minute
// hits all three; the medians over the rounds, user and system CPU apart, are the result.
//
//   git worktree add /tmp/base HEAD~1 && ln -s "$PWD/node_modules" /tmp/base/ && (cd /tmp/base && npm run build)
//   node bench/ab.js --base /tmp/base [--path /1m] [--connections 8] [--rounds 5] [--seconds 5] [--mode tcp]
//
// Needs wrk; HAProxy's row is left out when it is not installed.
import { parseArgs } from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHotproxy } from '../harness/hotproxy.js';
import { Proc, cpuTimes, freePort, waitForPort, which } from '../harness/procs.js';
import { measure } from './lib/loadgen.js';
import { haproxyMissing, startHaproxy } from './lib/proxies.js';

const BACKEND = fileURLToPath(new URL('./backend.js', import.meta.url));
const HERE = fileURLToPath(new URL('..', import.meta.url));

const { values: o } = parseArgs({
  options: {
    base: { type: 'string' }, path: { type: 'string', default: '/' }, connections: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '4' }, seconds: { type: 'string', default: '5' }, mode: { type: 'string', default: 'http' },
  },
});
if (!which('wrk')) { console.error('bench/ab.js: needs wrk (apt-get install wrk)'); process.exit(2); }
const connections = Number(o.connections);
const seconds = Number(o.seconds);
const builds = [...(o.base ? [path.resolve(o.base)] : []), HERE];

const backendPort = await freePort();
const backend = new Proc(process.execPath, [BACKEND], { name: 'backend', env: { PORT: String(backendPort), SERVER_STARTER_PORT: undefined } });
await waitForPort(backendPort, 10_000, backend);
const targets = builds.map((root) => ({
  name: root === HERE ? 'this checkout' : root,
  start: async () => {
    const flags = ['--mode', o.mode, ...(o.mode === 'tcp' ? ['--ready-delay', '300ms'] : [])];
    const hp = await startHotproxy(flags, [process.execPath, BACKEND], { proxyWorkers: 1, cli: path.join(root, 'dist/cli.js') });
    return { url: hp.url, pids: hp.proxyPids(), stop: () => hp.stop() };
  },
}));
if (!haproxyMissing()) targets.push({ name: 'HAProxy', start: async () => { const h = await startHaproxy(o.mode, backendPort); return { url: h.url, pids: h.proxyPids, stop: () => h.stop() }; } });

const samples = new Map(targets.map((t) => [t.name, []]));
try {
  for (let round = 1; round <= Number(o.rounds); round++) {
    for (const t of targets) {
      const x = await t.start();
      try {
        const url = `${x.url}${o.path === '/' ? '' : o.path}`;
        await measure('wrk', url, { seconds: 2, connections });
        const a = cpuTimes(x.pids);
        const m = await measure('wrk', url, { seconds, connections });
        const b = cpuTimes(x.pids);
        const s = { user: (b.user - a.user) / m.requests, system: (b.system - a.system) / m.requests, rps: m.rps, failed: m.errors + m.non2xx };
        samples.get(t.name).push(s);
        console.log(`round ${round} ${t.name}: ${(s.user + s.system).toFixed(2)} µs/request (user ${s.user.toFixed(2)}, system ${s.system.toFixed(2)}), ${s.rps.toFixed(0)} req/s${s.failed ? `, ${s.failed} failed` : ''}`);
      } finally {
        await x.stop();
      }
    }
  }
} finally {
  await backend.stop(5_000);
}

const median = (v) => { const s = [...v].sort((x, y) => x - y); return s[(s.length - 1) >> 1]; };
const total = (name) => median(samples.get(name).map((s) => s.user + s.system));
console.log(`\n${o.mode} ${o.path}, ${connections} connections, ${o.rounds} rounds of ${seconds} s, medians (${process.version}):`);
for (const [name, list] of samples) {
  const ratio = samples.has('HAProxy') ? ` = ${(total(name) / total('HAProxy')).toFixed(2)}× HAProxy` : '';
  console.log(`  ${name}: ${total(name).toFixed(2)} µs/request (user ${median(list.map((s) => s.user)).toFixed(2)}, system ${median(list.map((s) => s.system)).toFixed(2)})${ratio}`);
}
