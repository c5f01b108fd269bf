// tcp-mode cost, focused: `node bench/tcp-pipe.js [--rounds N] [--seconds S] [--base DIR]`.
// Keeps direct, HAProxy tcp and hotproxy tcp (plus, with --base, another hotproxy build, e.g.
// a copy of an older dist/) running side by side and measures them in short alternating
// rounds, so that load from anything else on the machine hits every target alike. Per round:
// proxy CPU µs per request split into user and system time (from /proc), and throughput
// relative to direct in the same round.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHotproxy } from '../harness/hotproxy.js';
import { measure } from './lib/loadgen.js';
import { Proc, cpuTimes, freePort, stopAll, waitForPort } from '../harness/procs.js';
import { haproxyMissing, startHaproxy } from './lib/proxies.js';

const BACKEND = fileURLToPath(new URL('./backend.js', import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const rounds = Number(opt('--rounds', 5));
const seconds = Number(opt('--seconds', 3));
const base = opt('--base');

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };

async function main() {
  const backendPort = await freePort();
  const backend = new Proc(process.execPath, [BACKEND], { name: 'backend', env: { PORT: String(backendPort), SERVER_STARTER_PORT: undefined } });
  await waitForPort(backendPort, 10_000, backend);
  const targets = [{ name: 'direct', url: `http://127.0.0.1:${backendPort}`, pids: [] }];
  if (!haproxyMissing()) {
    const h = await startHaproxy('tcp', backendPort);
    targets.push({ name: 'HAProxy tcp', url: h.url, pids: h.proxyPids });
  }
  const hot = async (name, cli) => {
    const hp = await startHotproxy(['--mode', 'tcp', '--ready-delay', '300ms'], [process.execPath, BACKEND], { cli, proxyWorkers: 1 });
    targets.push({ name, url: hp.url, pids: hp.proxyPids() });
  };
  await hot('hotproxy tcp');
  if (base) await hot(`hotproxy tcp (${path.basename(path.resolve(base))})`, path.resolve(base, 'cli.js'));

  for (const t of targets) await measure('wrk', t.url, { seconds: 1 });
  const per = new Map(targets.map((t) => [t.name, []]));
  for (let r = 1; r <= rounds; r++) {
    const line = [];
    let directRps = NaN;
    for (const t of targets) {
      const a = cpuTimes(t.pids);
      const m = await measure('wrk', t.url, { seconds });
      const b = cpuTimes(t.pids);
      if (m.errors || m.non2xx) throw new Error(`${t.name}: ${m.errors} socket errors, ${m.non2xx} non-2xx`);
      if (!t.pids.length) directRps = m.rps;
      const user = (b.user - a.user) / m.requests, sys = (b.system - a.system) / m.requests;
      const row = { us: user + sys, user, sys, rps: m.rps, vsDirect: m.rps / directRps };
      per.get(t.name).push(row);
      line.push(t.pids.length
        ? `${t.name} ${row.us.toFixed(1)} µs (user ${row.user.toFixed(1)} + sys ${row.sys.toFixed(1)}), ${Math.round(m.rps)} rps = ${row.vsDirect.toFixed(2)}x direct`
        : `direct ${Math.round(m.rps)} rps`);
    }
    process.stdout.write(`round ${r}: ${line.join(' | ')}\n`);
  }
  process.stdout.write('\nmedians over rounds: µs/req (user + sys), throughput vs direct\n');
  for (const [name, rows] of per) {
    if (name === 'direct') continue;
    const m = (k) => median(rows.map((x) => x[k]));
    process.stdout.write(`  ${name}: ${m('us').toFixed(1)} (${m('user').toFixed(1)} + ${m('sys').toFixed(1)}), ${m('vsDirect').toFixed(2)}x\n`);
  }
}

try {
  await main();
} catch (err) {
  process.exitCode = 1;
  process.stderr.write(`tcp-pipe: ${err.stack ?? err}\n`);
} finally {
  await stopAll(10_000);
}
