import { describe, expect, it } from 'vitest';
import { expectNothingLeft, fixture, startHotproxy } from './helpers/hotproxy.js';
import { Load } from './helpers/load.js';
import { waitFor } from './helpers/wait.js';
import { BACKEND_STARTED, DEPLOYED, PROXY_WORKER_EXITED, PROXY_WORKER_READY } from '../src/messages.js';

describe('stopping', () => {
  it('SIGTERM under load lets in-flight requests finish, stops everything and exits 0', async () => {
    const hp = await startHotproxy(['--workers', '2', '--proxy-workers', '2']);
    const load = new Load(hp.url, 10);
    const slow = fetch(`${hp.url}/slow?ms=700`);
    await hp.waitForLog('slow request started');
    hp.signal('SIGTERM');
    expect((await slow).status).toBe(200);
    expect(await hp.exited).toBe(0);
    const result = await load.stop();
    // Keep-alive clients see their connection closed after a response, never under a request.
    // New connections after the stop are refused (or reset if the kernel had queued them in
    // the instant before the listener closed, as with any server).
    expect(result.ok).toBeGreaterThan(0);
    expect(result.failedOnReused).toBe(0);
    // Every distinct failure, not the first 20: refusals must not hide a 5xx behind them.
    expect([...result.errorCounts.keys()].filter((e) => !/ECONNREFUSED|ECONNRESET/.test(e))).toEqual([]);
    await expectNothingLeft(hp);
  });

  it('SIGINT (Ctrl-C) stops everything and exits 0', async () => {
    const hp = await startHotproxy([], ['python3', fixture('python-app.py')]);
    hp.signal('SIGINT');
    expect(await hp.exited).toBe(0);
    await expectNothingLeft(hp);
  });

  it('SIGTERM during a deploy stops green and blue and exits 0', async () => {
    const hp = await startHotproxy([], ['node', fixture('node-app.js')], { env: { APP_START_DELAY_MS: '300' } });
    hp.signal('SIGHUP');
    await hp.waitForLog(BACKEND_STARTED, (l) => l.gen === 2);
    hp.signal('SIGTERM');
    expect(await hp.exited).toBe(0);
    await expectNothingLeft(hp);
  });

  it('backends and proxy workers do not outlive a SIGKILLed master', async () => {
    const hp = await startHotproxy(['--workers', '2']);
    expect(hp.childPids().length).toBe(3);
    hp.signal('SIGKILL');
    await hp.exited;
    await expectNothingLeft(hp);
  });

  it('a new proxy worker replaces one that crashed, without refusing connections', async () => {
    const hp = await startHotproxy([]);
    const worker = hp.find(PROXY_WORKER_READY)!.workerPid as number;
    process.kill(worker, 'SIGKILL');
    // The listener stays open in the master: connections queue until the new worker accepts.
    const res = await fetch(hp.url);
    expect(res.status).toBe(200);
    await waitFor(() => hp.logs.filter((l) => l.msg === PROXY_WORKER_READY).length === 2, 'replacement worker');
    await hp.stop();
  });
});

describe('signals to the process group', () => {
  it('a HUP sent to the whole process group deploys and kills no proxy worker', async () => {
    const hp = await startHotproxy([]);
    const load = new Load(hp.url, 5);
    await waitFor(() => load.result.ok > 20, 'load');
    const before = hp.logs.length;
    // What a terminal hang-up or `kill -HUP -- -PGID` does: every process of the group gets it.
    process.kill(-hp.pid, 'SIGHUP');
    await waitFor(() => hp.logs.slice(before).find((l) => l.msg === DEPLOYED), 'deploy');
    expect(hp.logs.find((l) => l.msg === PROXY_WORKER_EXITED)).toBeUndefined();
    const result = await load.stop();
    expect(result.failed).toBe(0);
    await hp.stop();
  });
});
