// HUP → first response from the new generation, with readiness by polling (GET --health-path,
// --health-rise 2 checks --health-interval apart) and told by the app (--health notify: READY=1
// on NOTIFY_SOCKET, sent by the hotproxy/app helper once it listens). Same app, same load.
import { performance } from 'node:perf_hooks';
import { fixture, startHotproxy } from '../harness/hotproxy.js';
import { firstAnswer, Load } from '../harness/load.js';
import { sleep } from '../harness/wait.js';
import * as M from '../dist/messages.js';
import { percentile } from './lib/report.js';
import { runAppStart } from './appstart.js';

const APP = [process.execPath, fixture('app-helper.js')];
const MODES = [
  { name: 'polling (GET, --health-rise 2)', args: [] },
  { name: '--health notify (READY=1)', args: ['--health', 'notify'] },
];

export async function runReadiness({ quick, log = () => {} }) {
  const hups = quick ? 3 : 7;
  // This app's own start, alone: what no proxy can beat.
  const appStart = await runAppStart({ quick, log, app: APP[1], name: 'the hotproxy/app helper app' });
  const modes = [];
  for (const mode of MODES) {
    log(`readiness: ${mode.name}, ${hups} × SIGHUP`);
    const hp = await startHotproxy(mode.args, APP);
    const load = new Load(hp.url, 4);
    const swaps = [];
    try {
      await sleep(500);
      for (let i = 0; i < hups; i++) {
        const t0 = performance.now();
        const out = await hp.reload();
        if (out.msg !== M.DEPLOYED) throw new Error(`readiness bench: ${out.msg} ${out.err ?? ''}`);
        const seen = await firstAnswer(load.firstSeen, out.pids, 10_000);
        if (seen !== undefined) swaps.push(seen - t0);
        await sleep(300);
      }
    } finally {
      const r = await load.stop();
      await hp.stop();
      modes.push({ mode: mode.name, hups, swapP50Ms: percentile(swaps, 50), swapMaxMs: swaps.length ? Math.max(...swaps) : null, failed: r.failed });
    }
  }
  return { appStart, modes };
}

