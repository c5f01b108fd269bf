// HUP → first response from the new generation, with readiness by polling (GET --health-path,
// --health-rise 2 checks --health-interval apart) and told by the app (--health notify: READY=1
// on NOTIFY_SOCKET, sent by the hotproxy/app helper once it listens). Same app, same load.
// What hotproxy adds is taken HUP by HUP: the swap minus the new instance's own start (its
// process start → its first answer), which the app times itself. An app started alone on
// an idle machine (appStart) starts faster than one started beside a loaded proxy, so that
// difference alone would blame the proxy for the load.
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
    const hp = await startHotproxy(mode.args, APP, { env: { APP_TIMES: '1' } });
    const load = new Load(hp.url, 4);
    const swaps = [];
    const apps = [];
    const parts = [];
    const adds = [];
    try {
      await sleep(500);
      for (let i = 0; i < hups; i++) {
        const t0 = performance.now();
        const wall0 = performance.timeOrigin + t0;
        const out = await hp.reload();
        if (out.msg !== M.DEPLOYED) throw new Error(`readiness bench: ${out.msg} ${out.err ?? ''}`);
        const seen = await firstAnswer(load.firstSeen, out.pids, 10_000);
        if (seen !== undefined) {
          swaps.push(seen - t0);
          // The app's own start in this very run, under the same load, as the app timed it: its
          // process start to its first answer. The rest of the swap is hotproxy's: HUP to the
          // process start (spawning), and the answer's way to the client. The app's span also
          // holds hotproxy's routing (READY=1 → the first request in the app's hands), so that
          // is shown apart, as an upper bound: it includes the app's own loop finishing its start.
          const t = await appTimes(hp, out.pids[0]);
          if (t !== undefined) {
            const app = t.answeredAt - t.startAt;
            apps.push(app);
            adds.push(seen - t0 - app);
            parts.push({ spawn: t.startAt - wall0, route: t.arrivedAt - t.listeningAt, back: performance.timeOrigin + seen - t.answeredAt });
          }
        }
        await sleep(300);
      }
    } finally {
      const r = await load.stop();
      await hp.stop();
      const p50 = (xs) => percentile(xs, 50);
      const max = (xs) => (xs.length ? Math.max(...xs) : null);
      modes.push({
        mode: mode.name, hups, swapP50Ms: p50(swaps), swapMaxMs: max(swaps), appP50Ms: p50(apps), addsP50Ms: p50(adds), addsMaxMs: max(adds),
        spawnP50Ms: p50(parts.map((p) => p.spawn)), routeP50Ms: p50(parts.map((p) => p.route)), backP50Ms: p50(parts.map((p) => p.back)),
        failed: r.failed,
      });
    }
  }
  return { appStart, modes };
}

/** What the new instance said of its own times (APP_TIMES=1), once its lines are in the log. */
async function appTimes(hp, pid) {
  const end = Date.now() + 2_000;
  const said = (prefix) => {
    const line = hp.logs.find((l) => l.backendPid === pid && typeof l.msg === 'string' && l.msg.startsWith(prefix));
    return line === undefined ? undefined : JSON.parse(line.msg.slice(prefix.length));
  };
  while (Date.now() < end) {
    const up = said('listening ');
    const req = said('first request ');
    if (up !== undefined && req !== undefined) return { ...up, ...req };
    await sleep(5);
  }
  return undefined;
}
