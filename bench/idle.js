// Idle-connection memory: N keep-alive clients that each made one request and then went
// quiet. Reports the proxy worker's RSS before and after (and per connection), whether the
// proxy kept them all open, and whether another client is still served promptly meanwhile.
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { startHotproxy } from '../harness/hotproxy.js';
import { rssKiB } from '../harness/procs.js';
import { sleep } from '../harness/wait.js';
import { percentile } from './lib/report.js';

const BACKEND = fileURLToPath(new URL('./backend.js', import.meta.url));
const REQUEST = 'GET / HTTP/1.1\r\nHost: bench\r\n\r\n';

/** Both ends of every connection live on this machine: half the fd limit each, minus headroom. */
export function fdLimit() {
  try {
    return Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim()) || 1024;
  } catch {
    return 1024;
  }
}

/** One keep-alive connection that made a request, got its answer and now just stays open. */
export function idleClient(port, closes) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => {
      got += d;
      if (got.endsWith('hello world\n')) resolve(s);
    });
    s.on('error', reject);
    s.on('close', () => closes.count++);
    s.write(REQUEST);
  });
}

export async function runIdle({ log = () => {} }) {
  // 10,000 in quick runs too: with fewer, the heap's own growth is most of the difference.
  const wanted = 10_000;
  const limit = fdLimit();
  const n = Math.min(wanted, limit - 1_000);
  const hp = await startHotproxy([], [process.execPath, BACKEND], { proxyWorkers: 1 });
  const sockets = [];
  const closes = { count: 0 };
  try {
    const [worker] = hp.workerPids();
    const before = rssKiB(worker);
    log(`idle: opening ${n} keep-alive connections (fd limit ${limit})`);
    for (let i = 0; i < n; i += 500) {
      const batch = Array.from({ length: Math.min(500, n - i) }, () => idleClient(hp.port, closes));
      sockets.push(...(await Promise.all(batch)));
    }
    // The raw engine holds a connection idle for a second as its bare handle: wait for that
    // (up to 10 s). V8 gives the heap that serving the connections used back to the system
    // only in a GC it runs once the process has been quiet for a while (some 20 s here): the
    // lowest RSS over the next 30 s is what the idle connections cost.
    const t0 = Date.now();
    let held = 0;
    while (Date.now() - t0 < 10_000) {
      held = (await hp.status())?.workers?.[0]?.idle ?? 0;
      if (held >= n) break;
      await sleep(250);
    }
    let after = rssKiB(worker);
    for (let i = 0; i < 30; i++) {
      await sleep(1000);
      after = Math.min(after, rssKiB(worker));
    }
    // Another client, meanwhile: sequential requests on one fresh connection.
    const probe = await idleClient(hp.port, { count: 0 });
    const lat = [];
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      await new Promise((resolve) => {
        let got = '';
        const onData = (d) => { got += d; if (got.endsWith('hello world\n')) { probe.off('data', onData); resolve(); } };
        probe.on('data', onData);
        probe.write(REQUEST);
      });
      lat.push(performance.now() - t0);
    }
    probe.destroy();
    return {
      connections: n, wanted, fdLimit: limit,
      workerRssBeforeMiB: before / 1024, workerRssAfterMiB: after / 1024,
      perConnectionKiB: (after - before) / n, heldBare: held,
      closedByProxy: closes.count,
      probeP50Ms: percentile(lat, 50), probeP99Ms: percentile(lat, 99),
    };
  } finally {
    for (const s of sockets) s.destroy();
    await hp.stop();
  }
}
