import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI, expectNothingLeft, fixture, startHotproxy, runCli } from './helpers/hotproxy.js';
import { waitFor } from './helpers/wait.js';
import { READY } from '../src/messages.js';

const RUNUSER = '/usr/sbin/runuser';

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'hp-control-test-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));


describe('control commands', () => {
  it('reload exits 0 once green serves, and status shows generations, pids and in-flight requests', async () => {
    const hp = await startHotproxy(['--runtime-dir', dir]);
    const r = await runCli(['reload', '--runtime-dir', dir]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^deployed generation 2 \(pids \d+\) in \d+ ms/);
    const slow = fetch(`${hp.url}/slow?ms=1500`);
    await hp.waitForLog('slow request started');
    const s = await runCli(['status', '--runtime-dir', dir, '--json']);
    expect(s.status).toBe(0);
    const status = JSON.parse(s.stdout);
    expect(status.pid).toBe(hp.pid);
    expect(status.listen).toEqual([`127.0.0.1:${hp.port}`]);
    expect(status.generations[0]).toMatchObject({ gen: 2, state: 'active', pids: hp.activePids(), healthy: 1, size: 1, inflight: 1 });
    expect(status.workers).toHaveLength(1);
    expect(status.workers[0].connections).toBeGreaterThanOrEqual(1);
    expect((await slow).status).toBe(200);
    const text = await runCli(['status', '--runtime-dir', dir]);
    expect(text.stdout).toMatch(/generation 2 {2}active/);
    await hp.stop();
  });

  it('reload exits non-zero with the reason when green never becomes healthy', async () => {
    const hp = await startHotproxy(['--runtime-dir', dir, '--deploy-timeout', '800ms'], ['node', fixture('node-app.js')], {
      env: { APP_FAIL_FROM_GEN: '2', APP_FAIL_MODE: 'unhealthy' },
    });
    const r = await runCli(['reload', '--runtime-dir', dir]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/^hotproxy: reload failed: backend \d+ not healthy within 800 ms: GET \/ answered 503$/);
    expect((await fetch(hp.url)).status).toBe(200);
    await hp.stop();
  });

  it('stop through --pid-file drains, exits 0, removes the pid and status files and leaves nothing', async () => {
    const pidFile = join(dir, 'hp.pid');
    const statusFile = join(dir, 'hp.status');
    const hp = await startHotproxy(['--pid-file', pidFile, '--status-file', statusFile, '--workers', '2']);
    expect(readFileSync(pidFile, 'utf8')).toBe(`${hp.pid}\n`);
    const pids = hp.activePids().sort((a, b) => a - b);
    expect(readFileSync(statusFile, 'utf8')).toBe(pids.map((p) => `1:${p}\n`).join(''));
    await runCli(['reload', '--pid-file', pidFile]);
    await waitFor(() => readFileSync(statusFile, 'utf8').startsWith('2:'), 'status file to show generation 2 only');
    const r = await runCli(['stop', '--pid-file', pidFile]);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(`stopped hotproxy ${hp.pid}`);
    expect(await hp.exited).toBe(0);
    expect(existsSync(pidFile)).toBe(false);
    expect(existsSync(statusFile)).toBe(false);
    await expectNothingLeft(hp);
  });

  it('a pid file of a running hotproxy is not taken over by a second one', async () => {
    const pidFile = join(dir, 'hp.pid');
    await startHotproxy(['--pid-file', pidFile]);
    const second = spawnSync(process.execPath, [CLI, '--listen', '127.0.0.1:0', '--pid-file', pidFile, '--', 'node', fixture('node-app.js')], { encoding: 'utf8' });
    expect(second.status).toBe(1);
    expect(second.stderr).toMatch(/^hotproxy: pid file .* belongs to running process \d+\n$/);
  });

  it('without an instance, or with two, the command says what to do', async () => {
    const none = await runCli(['status', '--runtime-dir', dir]);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/^hotproxy: no running hotproxy found in .*: name one with --control or --pid-file\n$/);
    await startHotproxy(['--runtime-dir', dir]);
    await startHotproxy(['--runtime-dir', dir]);
    const two = await runCli(['status', '--runtime-dir', dir]);
    expect(two.status).toBe(2);
    expect(two.stderr).toMatch(/2 hotproxy instances are running/);
  });

  it('the control socket is 0600 inside a 0700 directory', async () => {
    const hp = await startHotproxy(['--runtime-dir', dir]);
    const path = (hp.find(READY)!.control as string);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(path, '..')).mode & 0o777).toBe(0o700);
    await hp.stop();
  });

  it('another user cannot use the control socket', async ({ skip }) => {
    if (process.getuid?.() !== 0 || spawnSync(RUNUSER, ['-u', 'nobody', '--', 'true']).status !== 0) skip('needs root and runuser to run as nobody');
    const hp = await startHotproxy(['--runtime-dir', dir]);
    const path = (hp.find(READY)!.control as string);
    const probe = `require('net').connect(${JSON.stringify(path)}).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(3); })`;
    // The owner can (it is the live socket); nobody cannot even reach it.
    expect(spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' }).stdout.trim()).toBe('connected');
    expect(spawnSync(RUNUSER, ['-u', 'nobody', '--', process.execPath, '-e', probe], { encoding: 'utf8' }).stdout.trim()).toBe('EACCES');
    await hp.stop();
  });
});
