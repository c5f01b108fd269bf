// Readiness from the app: every backend gets its own NOTIFY_SOCKET (systemd's protocol) in the
// runtime directory; with --health notify an instance is ready when it sends READY=1.
import { describe, expect, it } from 'vitest';
import { BACKEND_STATUS, DEPLOYED } from '../src/messages.js';
import { fixture, NODE_APP, startHotproxy } from './helpers/hotproxy.js';
import { Load } from './helpers/load.js';
import { waitFor } from './helpers/wait.js';

const APP = ['node', fixture('app-helper.js')];

describe('--health notify', () => {
  it('an instance is ready when it says READY=1, not when it first answers a request', async () => {
    // The app answers at once but says READY=1 only 800 ms after it listens.
    const env = { APP_READY_AFTER_MS: '800' };
    const polled = await startHotproxy([], APP, { env });
    const byGet = await polled.reload();
    expect(byGet.msg).toBe(DEPLOYED);
    expect(byGet.ms as number).toBeLessThan(800);
    await polled.stop();

    const told = await startHotproxy(['--health', 'notify'], APP, { env });
    const load = new Load(told.url, 4, '/', { timeoutMs: 10_000 });
    await waitFor(() => load.result.ok > 20, 'load to start');
    const byNotify = await told.reload();
    expect(byNotify.msg).toBe(DEPLOYED);
    expect(byNotify.ms as number).toBeGreaterThanOrEqual(800);
    const green = told.activePids()[0]!;
    await waitFor(() => load.servedBy(green) > 20, 'green to serve');
    const r = await load.stop();
    expect(r.errors).toEqual([]);
    expect(r.failed).toBe(0);
  });

  it('with the hotproxy/app helper, READY=1 comes once it listens, and STATUS= lines are logged', async () => {
    const hp = await startHotproxy(['--health', 'notify'], APP, { env: { APP_STATUS: 'warming up' } });
    expect((await (await fetch(hp.url)).json() as { gen: number }).gen).toBe(1);
    const status = await hp.waitForLog(BACKEND_STATUS);
    expect(status).toMatchObject({ status: 'warming up', backendPid: hp.activePids()[0] });
    expect((await hp.reload()).msg).toBe(DEPLOYED);
  });

  it('an app that never says READY=1 fails the deploy at --deploy-timeout with the reason', async () => {
    const hp = await startHotproxy(['--health', 'notify', '--deploy-timeout', '1s'], NODE_APP, { noWait: true });
    expect(await hp.exited).toBe(1);
    expect(hp.stderr).toMatch(/^hotproxy: the first generation did not start: backend \d+ sent no READY=1 within 1000 ms\n$/);
  });

  it('each backend has its own socket in the runtime directory, never the one systemd gave hotproxy', async () => {
    const hp = await startHotproxy(['--workers', '2'], NODE_APP, { env: { NOTIFY_SOCKET: '/nonexistent/systemd-notify' } });
    const seen = new Map<number, string>();
    await waitFor(async () => {
      const b = await (await fetch(`${hp.url}/env`)).json() as { pid: number; env: { NOTIFY_SOCKET?: string } };
      seen.set(b.pid, b.env.NOTIFY_SOCKET ?? '');
      return seen.size === 2;
    }, 'both instances to answer');
    const paths = [...seen.values()];
    expect(new Set(paths).size).toBe(2);
    for (const p of paths) expect(p).toMatch(/\/hotproxy-\d+-[^/]+\/gen1-\d-0\.notify$/);
  });
});
