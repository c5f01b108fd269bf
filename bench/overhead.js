// Proxy overhead: the same minimal backend measured directly and behind each proxy, one target
// at a time (on a small machine, anything else running would steal the cores being measured).
// CPU per request is the number to compare across machines: throughput here is bounded by the
// load generator, proxy and backend sharing the same few cores.
import { fileURLToPath } from 'node:url';
import { startHotproxy } from './lib/hotproxy.js';
import { measure } from './lib/loadgen.js';
import { Proc, cpuMicros, freePort, waitForPort } from './lib/procs.js';
import { haproxyMissing, nginxMissing, startHaproxy, startNginx } from './lib/proxies.js';

const BACKEND = fileURLToPath(new URL('./backend.js', import.meta.url));

export async function runOverhead({ quick, tool, without = [], log = () => {} }) {
  const warmS = quick ? 2 : 3;
  const measureS = quick ? 5 : 10;
  const rows = [];

  // The shared backend for the direct row and HAProxy/nginx; hotproxy starts its own copy.
  const backendPort = await freePort();
  const backend = new Proc(process.execPath, [BACKEND], { name: 'backend', env: { PORT: String(backendPort), SERVER_STARTER_PORT: undefined } });
  try {
    await waitForPort(backendPort, 10_000, backend);
    const direct = { url: `http://127.0.0.1:${backendPort}`, proxyPids: [], backendPids: [backend.pid], stop: async () => {} };
    const hot = async (mode) => {
      const hp = await startHotproxy(['--mode', mode, ...(mode === 'tcp' ? ['--ready-delay', '300ms'] : [])], [process.execPath, BACKEND]);
      return { url: hp.url, proxyPids: hp.proxyPids, backendPids: hp.backendPids, stop: () => hp.stop() };
    };
    const ext = async (p) => {
      const e = await p;
      return { url: e.url, proxyPids: e.proxyPids, backendPids: [backend.pid], stop: () => e.stop() };
    };
    const skip = (name, reason) => (without.includes(name) ? `${name} disabled (--without)` : reason);
    const targets = [
      { name: 'direct (no proxy)', start: async () => direct },
      { name: 'hotproxy http', start: () => hot('http') },
      { name: 'hotproxy tcp', start: () => hot('tcp') },
      { name: 'HAProxy http', missing: skip('haproxy', haproxyMissing()), start: () => ext(startHaproxy('http', backendPort)) },
      { name: 'HAProxy tcp', missing: skip('haproxy', haproxyMissing()), start: () => ext(startHaproxy('tcp', backendPort)) },
      { name: 'nginx http', missing: skip('nginx', nginxMissing('http')), start: () => ext(startNginx('http', backendPort)) },
      { name: 'nginx tcp', missing: skip('nginx', nginxMissing('tcp')), start: () => ext(startNginx('tcp', backendPort)) },
    ];

    for (const t of targets) {
      if (t.missing) { rows.push({ name: t.name, skipped: t.missing }); log(`overhead: ${t.name}: skipped (${t.missing})`); continue; }
      log(`overhead: ${t.name}: warm-up ${warmS}s, measure ${measureS}s`);
      let target;
      try {
        target = await t.start();
        await measure(tool, target.url, { seconds: warmS });
        // Pid lists are fixed before sampling so both samples cover the same processes.
        const proxyPids = target.proxyPids;
        const backendPids = target.backendPids;
        const p0 = cpuMicros(proxyPids), b0 = cpuMicros(backendPids);
        const m = await measure(tool, target.url, { seconds: measureS });
        const p1 = cpuMicros(proxyPids), b1 = cpuMicros(backendPids);
        rows.push({
          name: t.name,
          direct: target === direct,
          requests: m.requests,
          rps: m.rps,
          p50Ms: m.p50Ms,
          p99Ms: m.p99Ms,
          errors: m.errors,
          non2xx: m.non2xx,
          proxyCpuUsPerReq: target === direct ? null : (p1 - p0) / m.requests,
          backendCpuUsPerReq: (b1 - b0) / m.requests,
          proxyPids,
        });
      } catch (err) {
        rows.push({ name: t.name, skipped: `failed: ${err.message.split('\n')[0]}` });
        log(`overhead: ${t.name}: ${err.message}`);
      } finally {
        if (target) await target.stop();
      }
    }
  } finally {
    await backend.stop(5_000);
  }

  const base = rows.find((r) => r.direct);
  for (const r of rows) if (!r.skipped && base) r.vsDirect = r.rps / base.rps;
  return { tool, connections: 50, warmS, measureS, rows };
}
