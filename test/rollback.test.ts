// Warm rollback: --keep-previous keeps the generation a deploy replaced running, unrouted, and
// `hotproxy rollback` routes back to it (after one check) or, when nothing is warm, deploys the
// previous release again. The generation rolled back from drains.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEPLOYED, DRAINED, KEPT_WARM, ROLLBACK_NOT_WARM, ROLLED_BACK } from '../src/messages.js';
import { fixture, runCliIn, startHotproxy, type Hotproxy } from './helpers/hotproxy.js';
import { Load } from './helpers/load.js';
import { isAlive, waitFor } from './helpers/wait.js';

const APP = fixture('node-app.js');

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'hp-rollback-test-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const cli = (...args: string[]): ReturnType<typeof runCliIn> => runCliIn(dir, ...args);

async function states(): Promise<Record<number, string>> {
  const s = JSON.parse((await cli('status', '--json')).stdout) as { generations: Array<{ gen: number; state: string }> };
  return Object.fromEntries(s.generations.map((g) => [g.gen, g.state]));
}

async function release(hp: Hotproxy): Promise<{ pid: number; gen: number; env: { APP_RELEASE?: string } }> {
  return (await (await fetch(`${hp.url}/env`)).json()) as never;
}

describe('hotproxy rollback', () => {
  it('to the warm previous generation: the old pid answers again at once, nothing starts, 0 failed', async () => {
    const hp = await startHotproxy(['--runtime-dir', dir, '--keep-previous', '60s']);
    const [blue] = hp.activePids() as [number];
    const load = new Load(hp.url, 6, '/', { timeoutMs: 15_000 });
    await waitFor(() => load.servedBy(blue) > 50, 'blue to serve');
    const r = await cli('reload', '--env', 'APP_RELEASE=2', '--', 'node', APP);
    expect(r.status).toBe(0);
    const green = hp.activePids()[0]!;
    await waitFor(() => load.servedBy(green) > 50, 'green to serve');
    expect((await hp.waitForLog(KEPT_WARM)).gen).toBe(1);
    expect(await states()).toEqual({ 1: 'warm', 2: 'active' });
    const servedByBlue = load.servedBy(blue);
    expect(isAlive(blue)).toBe(true);

    const started = hp.logs.length;
    const t0 = Date.now();
    const rollback = cli('rollback');
    await waitFor(() => load.servedBy(blue) > servedByBlue, 'the old pid to answer again', 5_000, 5);
    const answeredAt = Date.now();
    const back = await rollback;
    expect(back.stderr).toBe('');
    expect(back.status).toBe(0);
    expect(back.stdout).toMatch(/^rolled back to generation 1 \(pids \d+\) in \d+ ms, warm: node /);
    const rolled = hp.find(ROLLED_BACK)!;
    expect(rolled).toMatchObject({ gen: 1, warm: true, from: 2 });
    // The CLI's own start (a Node process) comes first; from the master's line on it is the
    // check and the route switch.
    console.log(`warm rollback: check + switch ${rolled.ms as number} ms; the old pid answered ${answeredAt - (rolled.time as number)} ms after, ${answeredAt - t0} ms after the CLI was run`);
    expect(answeredAt - t0).toBeLessThan(3_000);
    expect(rolled.ms as number).toBeLessThan(500);
    // Nothing was started for it.
    expect(hp.logs.slice(started).filter((l) => l.msg === DEPLOYED)).toEqual([]);
    expect((await release(hp)).env.APP_RELEASE).toBeUndefined();
    await hp.waitForLog(DRAINED, (l) => l.gen === 2);
    const result = await load.stop();
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
    // HUP deploys what it rolled back to.
    expect((await hp.reload()).msg).toBe(DEPLOYED);
    expect((await release(hp)).env.APP_RELEASE).toBeUndefined();
  });

  it('without --keep-previous it deploys the previous release anew, 0 failed', async () => {
    const hp = await startHotproxy(['--runtime-dir', dir]);
    const load = new Load(hp.url, 6, '/', { timeoutMs: 15_000 });
    await waitFor(() => load.result.ok > 50, 'load to start');
    expect((await cli('reload', '--env', 'APP_RELEASE=2', '--', 'node', APP)).status).toBe(0);
    await hp.waitForLog(DRAINED, (l) => l.gen === 1);
    const back = await cli('rollback');
    expect(back.status).toBe(0);
    expect(back.stdout).toMatch(/^rolled back to generation 3 \(pids \d+\) in \d+ ms, deployed anew: node /);
    const now = await release(hp);
    expect(now).toMatchObject({ gen: 3 });
    expect(now.env.APP_RELEASE).toBeUndefined();
    const result = await load.stop();
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
  });

  it('a warm generation that lost an instance is checked, found wanting, and the previous release deployed instead', async () => {
    const hp = await startHotproxy(['--runtime-dir', dir, '--keep-previous', '60s']);
    const [blue] = hp.activePids() as [number];
    expect((await hp.reload()).msg).toBe(DEPLOYED);
    await hp.waitForLog(KEPT_WARM);
    process.kill(blue, 'SIGKILL');
    await waitFor(() => !isAlive(blue), 'the warm instance to die');
    const back = await cli('rollback');
    expect(back.status).toBe(0);
    expect(back.stdout).toMatch(/deployed anew/);
    expect(hp.find(ROLLBACK_NOT_WARM)?.err).toBe('instance 0 is gone');
    expect((await release(hp)).gen).toBe(3);
  });

  it('the warm generation drains by itself once --keep-previous has passed', async () => {
    const hp = await startHotproxy(['--runtime-dir', dir, '--keep-previous', '1s']);
    const [blue] = hp.activePids() as [number];
    const t0 = Date.now();
    expect((await hp.reload()).msg).toBe(DEPLOYED);
    await hp.waitForLog(DRAINED, (l) => l.gen === 1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_000);
    await waitFor(() => !isAlive(blue), 'blue to exit');
    const back = await cli('rollback');
    expect(back.stdout).toMatch(/deployed anew/);
  });

  it('before any deploy there is nothing to roll back to: exit 1 with the reason', async () => {
    await startHotproxy(['--runtime-dir', dir, '--keep-previous', '60s']);
    const r = await cli('rollback');
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('hotproxy: rollback failed: nothing to roll back to: no deploy has replaced the first generation\n');
  });
});
