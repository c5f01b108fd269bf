// The app's own start time, run alone: spawn → first answered request. Swap latency is judged
// against it (target: swap latency ≤ app start + 150 ms), since no proxy can serve from an
// app before the app can serve at all.
import { fixture } from '../harness/hotproxy.js';
import { Proc, freePort, waitForPort } from '../harness/procs.js';
import { percentile } from './lib/report.js';

const NODE_APP = fixture('node-app.js');

async function answered(port, deadline) {
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`);
      if (res.ok) return;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error('app did not answer');
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** `app`: the script to time (default the storm's app). */
export async function runAppStart({ quick, log = () => {}, app = NODE_APP, name = "the storm's app" }) {
  const runs = quick ? 3 : 7;
  const times = [];
  log(`app start: ${runs} standalone starts of ${name}`);
  for (let i = 0; i < runs; i++) {
    const port = await freePort();
    const t0 = performance.now();
    const p = new Proc(process.execPath, [app], { env: { PORT: String(port), SERVER_STARTER_PORT: '' }, name: 'app' });
    try {
      await waitForPort(port, 10_000, p).catch(() => {});
      await answered(port, Date.now() + 10_000);
      times.push(performance.now() - t0);
    } finally {
      await p.stop(5_000);
    }
  }
  return { runs, p50Ms: percentile(times, 50), maxMs: Math.max(...times) };
}
