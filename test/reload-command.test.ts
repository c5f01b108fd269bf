// hotproxy reload [--env K=V]... -- <command…>: a generation of another command (a new release
// directory, new arguments), which HUP and crash restarts then run too. The fixture's /env
// answers with its arguments and APP_RELEASE.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BACKEND_RESTARTED, DEPLOYED, DEPLOYING, DEPLOY_FAILED, RELOAD_QUEUED, RELOAD_REFUSED } from '../src/messages.js';
import { fixture, NODE_APP, runCliIn, startHotproxy, type Hotproxy } from './helpers/hotproxy.js';
import { Load } from './helpers/load.js';
import { waitFor } from './helpers/wait.js';

const APP = fixture('node-app.js');

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'hp-reload-test-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const cli = (...args: string[]): ReturnType<typeof runCliIn> => runCliIn(dir, ...args);

interface Env { pid: number; gen: number; argv: string[]; env: Record<string, string | undefined> }

async function env(hp: Hotproxy): Promise<Env> {
  return (await (await fetch(`${hp.url}/env`)).json()) as Env;
}

async function status(): Promise<{ generations: Array<{ gen: number; state: string; command: string[]; envKeys: string[] }> }> {
  return JSON.parse((await cli('status', '--json')).stdout);
}

describe('reload with a command', () => {
  it('deploys the new command and variables under load with 0 failed; HUP and a crash restart run it too', async () => {
    const hp = await startHotproxy(['--runtime-dir', dir]);
    const load = new Load(hp.url, 6, '/', { timeoutMs: 15_000 });
    await waitFor(() => load.result.ok > 50, 'load to start');
    const r = await cli('reload', '--env', 'APP_RELEASE=42', '--', 'node', APP, 'release-42');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim().replace(/\(pids \d+\) in \d+ ms/, '(pids N) in N ms')).toBe(`deployed generation 2 (pids N) in N ms: node ${APP} release-42  (env APP_RELEASE)`);
    const green = ((await hp.waitForLog(DEPLOYED, (l) => l.gen === 2)).pids as number[])[0]!;
    await waitFor(() => load.servedBy(green) > 50, 'the new generation to serve');
    expect(await env(hp)).toMatchObject({ gen: 2, argv: ['release-42'], env: { APP_RELEASE: '42' } });

    expect((await hp.reload()).msg).toBe(DEPLOYED);
    const third = hp.activePids()[0]!;
    await waitFor(() => load.servedBy(third) > 50, 'the HUP generation to serve');
    const result = await load.stop();
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
    expect(await env(hp)).toMatchObject({ gen: 3, argv: ['release-42'], env: { APP_RELEASE: '42' } });

    process.kill(third, 'SIGKILL');
    const restarted = await hp.waitForLog(BACKEND_RESTARTED);
    expect(await env(hp)).toMatchObject({ pid: restarted.backendPid, gen: 3, argv: ['release-42'], env: { APP_RELEASE: '42' } });

    const s = await status();
    expect(s.generations[0]).toMatchObject({ gen: 3, state: 'active', command: ['node', APP, 'release-42'], envKeys: ['APP_RELEASE'] });
    expect((await cli('status')).stdout).toContain(`    command node ${APP} release-42  (env APP_RELEASE)`);
  });

  it('a missing command fails the reload with the reason (exit 1); the old generation serves on and HUP still runs the old command', async () => {
    const hp = await startHotproxy(['--runtime-dir', dir]);
    const before = await env(hp);
    const r = await cli('reload', '--', 'no-such-command-hp', 'x');
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('hotproxy: reload failed: command not found: no-such-command-hp\n');
    expect(hp.find(RELOAD_REFUSED)).toBeDefined();
    expect(hp.find(DEPLOYING, (l) => l.gen === 2)).toBeUndefined();
    expect(await env(hp)).toMatchObject({ pid: before.pid, gen: 1 });

    // A command that starts but never serves: a failed deploy, which changes nothing either.
    const bad = await cli('reload', '--env', 'APP_MODE=exit-at-start', '--', 'node', APP, 'broken');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^hotproxy: reload failed: /);
    expect(hp.find(DEPLOY_FAILED)).toBeDefined();

    expect((await hp.reload()).msg).toBe(DEPLOYED);
    const after = await env(hp);
    expect(after.pid).not.toBe(before.pid);
    expect(after.argv).toEqual([]);
    expect(after.env.APP_MODE).toBeUndefined();
    expect((await status()).generations[0]).toMatchObject({ state: 'active', command: NODE_APP, envKeys: [] });
  });

  it('of two reloads queued behind a deploy, the last one wins and the overtaken one fails with why', async () => {
    const hp = await startHotproxy(['--runtime-dir', dir, '--deploy-timeout', '10s']);
    // A slow start keeps the first deploy running while the next two queue.
    const first = cli('reload', '--env', 'APP_START_DELAY_MS=1500', '--', 'node', APP, 'a');
    await hp.waitForLog(DEPLOYING, (l) => l.gen === 2);
    const second = cli('reload', '--', 'node', APP, 'b');
    await hp.waitForLog(RELOAD_QUEUED, (l) => (l.command as string[]).includes('b'));
    const third = cli('reload', '--', 'node', APP, 'c');
    await hp.waitForLog(RELOAD_QUEUED, (l) => (l.command as string[]).includes('c'));
    const [a, b, c] = await Promise.all([first, second, third]);
    expect(a.status).toBe(0);
    expect(a.stdout).toMatch(/^deployed generation 2 .* a {2}\(env APP_START_DELAY_MS\)$/m);
    expect(b.status).toBe(1);
    expect(b.stderr).toBe(`hotproxy: reload failed: overtaken by a later reload (node ${APP} c) before it started\n`);
    expect(c.status).toBe(0);
    expect(c.stdout).toMatch(/^deployed generation 3 .* c$/m);
    expect(await env(hp)).toMatchObject({ gen: 3, argv: ['c'] });
    expect(hp.find(DEPLOYING, (l) => l.gen === 4)).toBeUndefined();
  });
});
