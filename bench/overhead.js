// Proxy overhead: the same minimal backend measured directly and behind each proxy, one target
// at a time (on a small machine, anything else running would steal the cores being measured).
// CPU per request is the number to compare across machines: throughput here is bounded by the
// load generator, proxy and backend sharing the same few cores.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHotproxy } from '../harness/hotproxy.js';
import { Proc, cpuMicros, freePort, waitForPort } from '../harness/procs.js';
import { measure } from './lib/loadgen.js';
import { haproxyMissing, nginxMissing, startHaproxy, startNginx } from './lib/proxies.js';

const BACKEND = fileURLToPath(new URL('./backend.js', import.meta.url));

/**
 * `path`: what every request asks for (bench/backend.js: '/' 12 bytes, '/1m' 1 MiB, ...);
 * `uploadBytes`: each request POSTs that many bytes instead; `connections`: how many at once;
 * `only`: names of the targets to measure (all when not given).
 */
export async function runOverhead({ quick, tool, without = [], rounds = quick ? 1 : 3, log = () => {}, path = '/', connections = 50, uploadBytes = 0, only, measureS: seconds }) {
  const warmS = quick ? 2 : 3;
  const measureS = seconds ?? (quick ? 5 : 10);
  /** name -> samples, one per round; rows are their medians. */
  const samples = new Map();
  const skipped = new Map();

  // The shared backend for the direct row and HAProxy/nginx; hotproxy starts its own copy.
  const backendPort = await freePort();
  const backend = new Proc(process.execPath, [BACKEND], { name: 'backend', env: { PORT: String(backendPort), SERVER_STARTER_PORT: undefined } });
  // The access log's file: on the disk a real one would be on, removed afterwards.
  const logDir = mkdtempSync(join(tmpdir(), 'hotproxy-bench-'));
  try {
    await waitForPort(backendPort, 10_000, backend);
    const direct = { url: `http://127.0.0.1:${backendPort}`, proxyPids: [], backendPids: [backend.pid], stop: async () => {} };
    const hot = async (mode, engine, extra = []) => {
      const flags = ['--mode', mode, ...(engine ? ['--engine', engine] : []), ...(mode === 'tcp' ? ['--ready-delay', '300ms'] : []), ...extra];
      const hp = await startHotproxy(flags, [process.execPath, BACKEND], { proxyWorkers: 1 });
      return { url: hp.url, proxyPids: hp.proxyPids(), backendPids: hp.activePids(), stop: () => hp.stop() };
    };
    const ext = async (p) => {
      const e = await p;
      return { url: e.url, proxyPids: e.proxyPids, backendPids: [backend.pid], stop: () => e.stop() };
    };
    const skip = (name, reason) => (without.includes(name) ? `${name} disabled (--without)` : reason);
    const targets = [
      { name: 'direct (no proxy)', start: async () => direct },
      { name: 'hotproxy http', start: () => hot('http', 'raw') },
      { name: 'hotproxy http, --access-log FILE', start: () => hot('http', 'raw', ['--access-log', join(logDir, 'access.log')]) },
      { name: 'hotproxy http (--engine node)', start: () => hot('http', 'node') },
      { name: 'hotproxy tcp', start: () => hot('tcp') },
      { name: 'HAProxy http', missing: skip('haproxy', haproxyMissing()), start: () => ext(startHaproxy('http', backendPort)) },
      { name: 'HAProxy tcp', missing: skip('haproxy', haproxyMissing()), start: () => ext(startHaproxy('tcp', backendPort)) },
      { name: 'nginx http', missing: skip('nginx', nginxMissing('http')), start: () => ext(startNginx('http', backendPort)) },
      { name: 'nginx tcp', missing: skip('nginx', nginxMissing('tcp')), start: () => ext(startNginx('tcp', backendPort)) },
    ].filter((t) => only === undefined || only.includes(t.name));

    // Rounds interleave the targets, so a slow minute on a shared machine hits all of them.
    for (let round = 1; round <= rounds; round++) for (const t of targets) {
      if (t.missing) { skipped.set(t.name, t.missing); if (round === 1) log(`overhead: ${t.name}: skipped (${t.missing})`); continue; }
      log(`overhead: round ${round}/${rounds}: ${t.name}: warm-up ${warmS}s, measure ${measureS}s`);
      let target;
      try {
        target = await t.start();
        const url = `${target.url}${path === '/' ? '' : path}`;
        await measure(tool, url, { seconds: warmS, connections, uploadBytes });
        // Pid lists are fixed before sampling so both samples cover the same processes.
        const proxyPids = target.proxyPids;
        const backendPids = target.backendPids;
        const p0 = cpuMicros(proxyPids), b0 = cpuMicros(backendPids);
        const m = await measure(tool, url, { seconds: measureS, connections, uploadBytes });
        const p1 = cpuMicros(proxyPids), b1 = cpuMicros(backendPids);
        if (!samples.has(t.name)) samples.set(t.name, []);
        samples.get(t.name).push({
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
        skipped.set(t.name, `failed: ${err.message.split('\n')[0]}`);
        log(`overhead: ${t.name}: ${err.message}`);
      } finally {
        if (target) await target.stop();
      }
    }
  } finally {
    await backend.stop(5_000);
    rmSync(logDir, { recursive: true, force: true });
  }

  const rows = [...new Set([...samples.keys(), ...skipped.keys()])].map((name) =>
    samples.has(name) ? medianRow(samples.get(name)) : { name, skipped: skipped.get(name) });
  const base = rows.find((r) => r.direct);
  for (const r of rows) if (!r.skipped && base) r.vsDirect = r.rps / base.rps;
  return { tool, connections, path, uploadBytes, warmS, measureS, rounds, rows };
}

/** Each number is the median over the rounds on its own; `rounds` keeps every sample. */
function medianRow(list) {
  const med = (k) => {
    const v = list.map((s) => s[k]).filter((x) => typeof x === 'number').sort((a, b) => a - b);
    return v.length ? v[(v.length - 1) >> 1] : null;
  };
  const row = { ...list[0], rounds: list.map((s) => ({ rps: s.rps, proxyCpuUsPerReq: s.proxyCpuUsPerReq })) };
  for (const k of ['requests', 'rps', 'p50Ms', 'p99Ms', 'proxyCpuUsPerReq', 'backendCpuUsPerReq']) row[k] = med(k);
  row.errors = list.reduce((a, s) => a + s.errors, 0);
  row.non2xx = list.reduce((a, s) => a + s.non2xx, 0);
  return row;
}
