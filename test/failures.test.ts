import { describe, expect, it } from 'vitest';
import { fixture, startHotproxy } from './helpers/hotproxy.js';
import { Load } from './helpers/load.js';
import { isAlive, waitFor } from './helpers/wait.js';
import { BACKEND_EXITED, BACKEND_RESTARTED, BACKEND_RESTART_FAILED, BACKEND_STARTED, DEPLOY_FAILED } from '../src/messages.js';

const app = ['node', fixture('node-app.js')];

describe('deploys that go wrong', () => {
  for (const [what, env, args] of [
    ['exits at start', { APP_FAIL_FROM_GEN: '2', APP_FAIL_MODE: 'exit' }, []],
    ['never becomes healthy', { APP_FAIL_FROM_GEN: '2', APP_FAIL_MODE: 'unhealthy' }, ['--deploy-timeout', '1500ms']],
  ] as const) {
    it(`a green that ${what} leaves the old generation serving with no failed request`, async () => {
      const hp = await startHotproxy([...args], app, { env });
      const [bluePid] = hp.activePids();
      const load = new Load(hp.url, 10);
      await waitFor(() => load.result.ok > 20, 'load to start');
      const outcome = await hp.reload();
      expect(outcome.msg).toBe(DEPLOY_FAILED);
      expect(outcome.level).toBe(50); // error
      expect(String(outcome.err)).toMatch(what === 'exits at start' ? /exited with code 4/ : /not healthy within 1500 ms: GET \/ answered 503/);
      const okBefore = load.result.ok;
      await waitFor(() => load.result.ok > okBefore + 50, 'blue to keep serving');
      const result = await load.stop();
      expect(result.failed).toBe(0);
      expect([...result.byPid.keys()]).toEqual([bluePid]);
      // The failed green is not left running.
      const greenPid = hp.find(BACKEND_STARTED, (l) => l.gen === 2)?.backendPid;
      expect(greenPid).toEqual(expect.any(Number));
      await waitFor(() => !isAlive(greenPid as number), 'failed green to be stopped');
      expect(await hp.stop()).toBe(0);
    });
  }

  it('hotproxy refuses to start when the first generation never becomes healthy', async () => {
    const hp = await startHotproxy(['--deploy-timeout', '1s'], app, { env: { APP_MODE: 'never-healthy' }, noWait: true });
    expect(await hp.exited).toBe(1);
    expect(hp.stderr.trim().split('\n')).toHaveLength(1);
    expect(hp.stderr).toMatch(/^hotproxy: the first generation did not start: .*not healthy within 1000 ms/);
  });
});

describe('crashes', () => {
  it('an active backend that crashes is restarted and requests wait for it instead of failing', async () => {
    const hp = await startHotproxy([]);
    const [pid] = hp.activePids();
    process.kill(pid!, 'SIGKILL');
    // Requests sent while it is down queue until the restarted instance is healthy.
    const res = await fetch(hp.url);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { pid: number };
    expect(body.pid).not.toBe(pid);
    const restarted = await hp.waitForLog(BACKEND_RESTARTED);
    expect(restarted.backendPid).toBe(body.pid);
    expect(hp.find(BACKEND_EXITED('was killed by SIGKILL'))?.restartInMs).toBe(100);
    await hp.stop();
  });

  it('requests get 503 after --queue-timeout when no backend comes back', async () => {
    // Every restart of this app exits at once: generation 1 starts fine, restarts never do.
    const hp = await startHotproxy(['--queue-timeout', '300ms'], app, { env: { APP_FAIL_FROM_GEN: '1', APP_FAIL_MODE: 'exit-on-restart' } });
    const [pid] = hp.activePids();
    process.kill(pid!, 'SIGKILL');
    await hp.waitForLog(BACKEND_RESTART_FAILED);
    const t0 = Date.now();
    const res = await fetch(hp.url);
    expect(res.status).toBe(503);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    await hp.stop();
  });
});
