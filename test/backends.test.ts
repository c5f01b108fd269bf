import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixture, startHotproxy } from './helpers/hotproxy.js';
import { swapsWithoutFailures } from './helpers/swaps.js';

async function json(url: string): Promise<Record<string, any>> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, any>;
}

describe('backends', () => {
  it('a Node app gets a listening fd 3 with the Server::Starter and systemd variables', async () => {
    const hp = await startHotproxy([]);
    const { pid, env } = await json(`${hp.url}/env`);
    expect(env.LISTEN_FDS).toBe('1');
    expect(env.LISTEN_PID).toBe(String(pid));
    expect(env.LISTEN_FDNAMES).toBe('hotproxy');
    const m = /^(\/.+\.sock)=3$/.exec(env.SERVER_STARTER_PORT);
    expect(m).not.toBeNull();
    // The private socket lives in a directory only this user can enter.
    expect(statSync(m![1]!).isSocket()).toBe(true);
    expect(statSync(dirname(m![1]!)).mode & 0o777).toBe(0o700);
    await hp.stop();
  });

  it('a Python stdlib app serving on socket.socket(fileno=3) swaps without failures', async () => {
    const hp = await startHotproxy([], ['python3', fixture('python-app.py')]);
    const body = await json(hp.url);
    expect(body.lang).toBe('python');
    await swapsWithoutFailures(hp, 3);
    expect(await hp.stop()).toBe(0);
  });

  it('--backend tcp hands over a loopback TCP socket', async () => {
    const hp = await startHotproxy(['--backend', 'tcp']);
    const { env } = await json(`${hp.url}/env`);
    expect(env.SERVER_STARTER_PORT).toMatch(/^127\.0\.0\.1:\d+=3$/);
    await swapsWithoutFailures(hp, 2);
    await hp.stop();
  });

  it('--backend port-env serves an app that only reads $PORT', async () => {
    const hp = await startHotproxy(['--backend', 'port-env'], ['node', fixture('port-env-app.js')]);
    const first = await json(hp.url);
    expect(first.port).toBeGreaterThan(0);
    await swapsWithoutFailures(hp, 2);
    const last = await json(hp.url);
    expect(last.port).not.toBe(first.port);
    await hp.stop();
  });

  it('--workers 2 runs two instances per generation and spreads requests over them', async () => {
    const hp = await startHotproxy(['--workers', '2']);
    const pids = new Set<number>();
    for (let i = 0; i < 10; i++) pids.add((await json(hp.url)).pid);
    expect(pids.size).toBe(2);
    expect(new Set(hp.activePids())).toEqual(pids);
    await hp.stop();
  });
});
