// systemd: socket activation through the real systemd-socket-activate (it binds, waits for the
// first connection, then execs hotproxy with LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES), and
// sd_notify messages read from a real unix datagram socket.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fixture, runCli, startHotproxy } from './helpers/hotproxy.js';
import { waitFor } from './helpers/wait.js';
import { freePort, installed } from './helpers/host.js';
import { handshake, makeCert } from './helpers/tls.js';
import { DEPLOYED, LISTENING, READY, SYSTEMD_SOCKETS_UNUSED } from '../src/messages.js';

const ACTIVATE = installed('systemd-socket-activate');
const NOTIFY = installed('systemd-notify') && installed('python3');
if (!ACTIVATE) console.warn('skipping socket activation tests: systemd-socket-activate is not installed (Debian package systemd)');
if (!NOTIFY) console.warn('skipping sd_notify tests: systemd-notify or python3 is not installed');

const dirs: string[] = [];
const others: ChildProcess[] = [];
afterEach(() => {
  for (const p of others.splice(0)) p.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'hotproxy-systemd-'));
  dirs.push(d);
  return d;
};

function get(target: { socketPath: string } | { port: number }, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ ...target, host: '127.0.0.1', path, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d)).on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
  });
}

describe.skipIf(!ACTIVATE)('systemd socket activation', () => {
  it('serves the connection that woke it, on the socket systemd passed by name, and keeps systemd variables from backends', async () => {
    const sock = join(tempDir(), 'public.sock');
    const hp = await startHotproxy(['--listen', 'fdname:web'], undefined, {
      wrap: ['systemd-socket-activate', '-l', sock, '--fdname=web'], noWait: true,
    });
    await waitFor(() => hp.stderr.includes('as 3.'), 'systemd-socket-activate to listen');
    // This request is what makes systemd-socket-activate exec hotproxy: it waits in the
    // socket's queue until a proxy worker accepts it.
    const first = await get({ socketPath: sock }, '/env');
    expect(first.status).toBe(200);
    const ready = await hp.waitForLog(READY);
    expect(ready.listen).toEqual([sock]);
    expect(hp.find(LISTENING)?.fromSystemd).toEqual([`${sock} (fd 3, web)`]);
    const env = (JSON.parse(first.body) as { env: Record<string, string | undefined> }).env;
    expect(env.LISTEN_FDNAMES).toBe('hotproxy');
    expect(env.LISTEN_FDS).toBe('1');

    expect((await hp.reload()).msg).toBe(DEPLOYED);
    expect((await get({ socketPath: sock })).status).toBe(200);
    expect(await hp.stop()).toBe(0);
  });

  it('takes every passed socket without --listen, and a --listen equal to one is taken, not bound again', async () => {
    const [a, b] = [await freePort(), await freePort()];
    // Port a is named by address (binding it again would fail: systemd-socket-activate holds it);
    // without --listen, both would be taken — here a second run checks that too.
    const named = await startHotproxy(['--listen', `127.0.0.1:${a}`], undefined, {
      wrap: ['systemd-socket-activate', '-l', `127.0.0.1:${a}`, '-l', `127.0.0.1:${b}`], noWait: true,
    });
    await waitFor(() => named.stderr.includes('as 4.'), 'systemd-socket-activate to listen');
    expect((await get({ port: a })).status).toBe(200);
    await named.waitForLog(READY);
    expect(named.find(LISTENING)?.listen).toEqual([`127.0.0.1:${a}`]);
    expect(named.find(SYSTEMD_SOCKETS_UNUSED)).toBeTruthy();
    expect(await named.stop()).toBe(0);

    const [c, d] = [await freePort(), await freePort()];
    const all = await startHotproxy([], undefined, {
      wrap: ['systemd-socket-activate', '-l', `127.0.0.1:${c}`, '-l', `127.0.0.1:${d}`], noWait: true,
    });
    await waitFor(() => all.stderr.includes('as 4.'), 'systemd-socket-activate to listen');
    expect((await get({ port: c })).status).toBe(200);
    await all.waitForLog(READY);
    expect((await get({ port: d })).status).toBe(200);
    expect(all.find(LISTENING)?.listen).toEqual([`127.0.0.1:${c}`, `127.0.0.1:${d}`]);
    expect(await all.stop()).toBe(0);
  });

  it('serves TLS on the socket systemd passed by the name --listen-tls gives, and plain HTTP on the other', async () => {
    const dir = tempDir();
    const pair = makeCert(dir, 'site', ['site.test']);
    const [plain, secure] = [await freePort(), await freePort()];
    const hp = await startHotproxy(['--listen', 'fdname:web', '--listen-tls', 'fdname:secure', '--tls-cert', pair.cert, '--tls-key', pair.key], undefined, {
      wrap: ['systemd-socket-activate', '-l', `127.0.0.1:${plain}`, '-l', `127.0.0.1:${secure}`, '--fdname=web:secure'], noWait: true,
    });
    await waitFor(() => hp.stderr.includes('as 4.'), 'systemd-socket-activate to listen');
    // The handshake that wakes it waits in the queue until a proxy worker accepts it.
    const seen = await handshake(secure, 'site.test');
    expect(seen.serial).toBe(pair.serial);
    const ready = await hp.waitForLog(READY);
    expect(ready.listen).toEqual([`127.0.0.1:${plain}`]);
    expect(ready.listenTls).toEqual([`127.0.0.1:${secure}`]);
    expect((await get({ port: plain })).status).toBe(200);
    expect(await hp.stop()).toBe(0);
  });
});

it('a --listen fd: or fdname: that systemd did not pass is one line on stderr and exit 1', async () => {
  for (const l of ['fd:3', 'fdname:web']) {
    const r = await runCli(['--listen', l, '--', 'node', fixture('node-app.js')]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`--listen ${l}: no such socket was passed in`);
  }
});

describe.skipIf(!NOTIFY)('sd_notify', () => {
  it('tells systemd READY=1 once serving, RELOADING=1 then READY=1 around a deploy, and STOPPING=1; backends never see the NOTIFY_SOCKET systemd gave hotproxy', async () => {
    const path = join(tempDir(), 'notify.sock');
    const receiver = spawn('python3', [fixture('notify-socket.py'), path], { stdio: ['ignore', 'pipe', 'inherit'] });
    others.push(receiver);
    const messages: string[] = [];
    let buf = '';
    receiver.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      messages.push(...lines);
    });
    await waitFor(() => messages.includes('listening'), 'the notify socket');

    const hp = await startHotproxy([], undefined, { env: { NOTIFY_SOCKET: path } });
    await waitFor(() => messages.some((m) => m.includes('READY=1')), 'READY=1');
    expect(messages.find((m) => m.includes('READY=1'))).toContain(`MAINPID=${hp.pid}`);
    const env = JSON.parse((await get({ port: hp.port }, '/env')).body) as { env: Record<string, string | undefined> };
    // Their own, in the runtime directory (test/notify.test.ts): systemd hears from hotproxy only.
    expect(env.env.NOTIFY_SOCKET).toMatch(/\/hotproxy-\d+-[^/]+\/gen1-0-0\.notify$/);

    expect((await hp.reload()).msg).toBe(DEPLOYED);
    await waitFor(() => messages.some((m) => m.includes('serving generation 2')), 'READY=1 after the deploy');
    const reloading = messages.findIndex((m) => m.includes('RELOADING=1'));
    expect(reloading).toBeGreaterThan(0);
    expect(messages[reloading]).toMatch(/MONOTONIC_USEC=\d+/);

    expect(await hp.stop()).toBe(0);
    expect(messages.some((m) => m.includes('STOPPING=1'))).toBe(true);
    const states = messages.map((m) => /(READY|RELOADING|STOPPING)=1/.exec(m)?.[0]).filter(Boolean);
    expect(states).toEqual(['READY=1', 'RELOADING=1', 'READY=1', 'STOPPING=1']);
  });
});
