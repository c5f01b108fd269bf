import { describe, expect, it } from 'vitest';
import { startHotproxy } from './helpers/hotproxy.js';
import { DEPLOYED, DEPLOY_FAILED } from '../src/messages.js';

describe('health checks', () => {
  it('--health-cmd decides readiness and sees the backend address and pid', async () => {
    const hp = await startHotproxy(['--health-cmd', 'test -S "$HOTPROXY_BACKEND_ADDRESS" && kill -0 "$HOTPROXY_BACKEND_PID"']);
    expect((await fetch(hp.url)).status).toBe(200);
    expect((await hp.reload()).msg).toBe(DEPLOYED);
    await hp.stop();
  });

  it('a failing --health-cmd fails the deploy and the old generation serves on', async () => {
    const hp = await startHotproxy(['--deploy-timeout', '800ms', '--health-cmd', 'test "$HOTPROXY_GENERATION" = 1']);
    const outcome = await hp.reload();
    expect(outcome.msg).toBe(DEPLOY_FAILED);
    expect(String(outcome.err)).toMatch(/health command exited with 1/);
    const body = (await (await fetch(hp.url)).json()) as { gen: number };
    expect(body.gen).toBe(1);
    await hp.stop();
  });

  it('--ready-delay counts an instance healthy once it has stayed up that long', async () => {
    const hp = await startHotproxy(['--ready-delay', '300ms']);
    const outcome = await hp.reload();
    expect(outcome.msg).toBe(DEPLOYED);
    expect(outcome.ms).toBeGreaterThanOrEqual(300);
    await hp.stop();
  });

  it('--health-path is the path that gets checked', async () => {
    // The fixture answers 503 on /unhealthy and 200 everywhere else.
    const hp = await startHotproxy(['--health-path', '/unhealthy', '--deploy-timeout', '800ms'], undefined, { noWait: true });
    expect(await hp.exited).toBe(1);
    expect(hp.stderr).toMatch(/GET \/unhealthy answered 503/);
  });
});
