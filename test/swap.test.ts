import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { expectNothingLeft, startHotproxy } from './helpers/hotproxy.js';
import { Load } from './helpers/load.js';
import { isAlive, waitFor } from './helpers/wait.js';
import { has } from '../src/internals/index.js';
import { DEPLOYED, DEPLOYING, DRAINED } from '../src/messages.js';

describe('blue/green swaps', () => {
  it.for(['raw', 'node'])('%s engine: 20 HUP swaps under keep-alive load fail no request and move traffic to each new generation', async (engine, { skip }) => {
    if (engine === 'raw' && !has('http-parser')) skip('this Node lacks the http-parser internal (src/internals): --engine raw would serve with the node engine');
    const hp = await startHotproxy(['--engine', engine]);
    const load = new Load(hp.url, 20);
    await waitFor(() => load.result.ok > 100, 'load to warm up');
    const seen: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = Date.now();
      const outcome = await hp.reload();
      expect(outcome.msg).toBe(DEPLOYED);
      const [pid] = outcome.pids as number[];
      seen.push(pid!);
      // The new generation takes the traffic: the no-retry client sees its pid answer.
      await waitFor(() => load.servedBy(pid!) > 20, `traffic on generation ${outcome.gen}`);
      // Pace the storm at about one swap a second, as a deploy script in a loop would.
      await waitFor(() => Date.now() - t0 >= 1000, 'the next second');
    }
    const result = await load.stop();
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
    expect(new Set(seen).size).toBe(20);
    for (const pid of seen) expect(result.byPid.get(pid)).toBeGreaterThan(0);
    // Every blue was stopped; only the last green still runs.
    await waitFor(() => seen.slice(0, -1).every((p) => !isAlive(p)), 'old generations to exit');
    expect(isAlive(seen.at(-1)!)).toBe(true);
    expect(await hp.stop()).toBe(0);
    await expectNothingLeft(hp);
  });

  it('a slow request started before a swap completes on the old generation', async () => {
    const hp = await startHotproxy([]);
    const [bluePid] = hp.activePids();
    const slow = get(`${hp.url}/slow?ms=2000`);
    await hp.waitForLog('slow request started');
    const outcome = await hp.reload();
    expect(outcome.msg).toBe(DEPLOYED);
    const res = await slow;
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).pid).toBe(bluePid);
    // Blue is stopped only after its in-flight request finished.
    await hp.waitForLog(DRAINED, (l) => l.gen === 1);
    expect(isAlive(bluePid!)).toBe(false);
    await hp.stop();
  });

  it('HUPs during a deploy are coalesced into one more deploy', async () => {
    const hp = await startHotproxy([], ['node', 'test/fixtures/node-app.js'], { env: { APP_START_DELAY_MS: '600' } });
    const load = new Load(hp.url, 5);
    hp.signal('SIGHUP');
    await hp.waitForLog(DEPLOYING, (l) => l.gen === 2);
    for (let i = 0; i < 5; i++) hp.signal('SIGHUP');
    await hp.waitForLog(DEPLOYED, (l) => l.gen === 3);
    // Give a wrongly queued extra deploy the chance to show up before judging.
    await waitFor(() => load.result.ok > 50 && hp.logs.some((l) => l.msg === DRAINED && l.gen === 2), 'gen 2 drained');
    expect(hp.logs.filter((l) => l.msg === DEPLOYING).map((l) => l.gen)).toEqual([1, 2, 3]);
    const result = await load.stop();
    expect(result.failed).toBe(0);
    await hp.stop();
  });
});

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d)).on('end', () => resolve({ status: res.statusCode!, body }));
    }).on('error', reject);
  });
}
