import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, expectNothingLeft, fixture, startHotproxy, runCli } from './helpers/hotproxy.js';
import { Load } from './helpers/load.js';
import { isAlive, waitFor } from './helpers/wait.js';
import { has } from '../src/internals/index.js';
import { openWebSocket } from './helpers/websocket.js';
import { CONNECTIONS_HANDED_OVER, DEPLOYED, UPGRADED, UPGRADING } from '../src/messages.js';

/** A second install of the built hotproxy, whose code a test can break before an upgrade. */
function copyInstall(): { cli: string; dir: string; breakWorker(code: string): void } {
  const dir = mkdtempSync(join(tmpdir(), 'hp-install-'));
  cpSync(`${ROOT}dist`, join(dir, 'dist'), { recursive: true });
  cpSync(`${ROOT}package.json`, join(dir, 'package.json'));
  symlinkSync(`${ROOT}node_modules`, join(dir, 'node_modules'));
  return { cli: join(dir, 'dist/cli.js'), dir, breakWorker: (code) => writeFileSync(join(dir, 'dist/proxy/worker.js'), code) };
}


describe('proxy upgrades', () => {
  it.for(['raw', 'node'])('%s engine: 20 upgrades under keep-alive load fail no request; the master and backends stay, workers change', async (engine, { skip }) => {
    if (engine === 'raw' && !has('http-parser')) skip('this Node lacks the http-parser internal (src/internals): --engine raw would serve with the node engine');
    const hp = await startHotproxy(['--proxy-workers', '2', '--engine', engine]);
    const backends = hp.activePids();
    expect(backends).toHaveLength(1);
    const load = new Load(hp.url, 20);
    await waitFor(() => load.result.ok > 100, 'load to warm up');
    const seen = new Set(hp.workerPids());
    for (let i = 0; i < 20; i++) {
      const t0 = Date.now();
      const outcome = await hp.upgrade();
      expect(outcome.msg).toBe(UPGRADED);
      for (const pid of outcome.workers as number[]) {
        expect(seen.has(pid)).toBe(false);
        seen.add(pid);
      }
      const ok = load.result.ok;
      await waitFor(() => load.result.ok > ok + 50, 'traffic after the upgrade');
      await waitFor(() => Date.now() - t0 >= 1000, 'the next second');
    }
    const result = await load.stop();
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
    expect(hp.activePids()).toEqual(backends);
    expect(backends.every(isAlive)).toBe(true);
    // Every upgrade was done by the same master process, still the one we started.
    const upgraded = hp.logs.filter((l) => l.msg === UPGRADED);
    expect(upgraded).toHaveLength(20);
    expect(upgraded.every((l) => l.pid === hp.pid)).toBe(true);
    expect(isAlive(hp.pid)).toBe(true);
    // Connections moved rather than being closed: the retiring workers handed them over.
    const handed = hp.logs.filter((l) => l.msg === CONNECTIONS_HANDED_OVER).reduce((n, l) => n + (l.handedOver as number), 0);
    expect(handed).toBeGreaterThanOrEqual(20 * 10);
    expect(await hp.stop()).toBe(0);
    await expectNothingLeft(hp);
  });

  it('an idle keep-alive connection opened before an upgrade is served after it, without a reset', async () => {
    const hp = await startHotproxy([]);
    const [oldWorker] = hp.workerPids();
    const sock = net.connect(hp.port, '127.0.0.1');
    let buf = '';
    sock.on('data', (d) => (buf += d));
    const closed = new Promise((r) => sock.once('close', r));
    sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => buf.includes('"gen":1'), 'first response');
    await hp.upgrade();
    // The old worker is gone, so whoever answers next on this socket is the new one.
    await waitFor(() => !isAlive(oldWorker!), 'old worker to exit');
    sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => buf.split('HTTP/1.1 200').length === 3, 'second response on the same connection');
    expect(sock.destroyed).toBe(false);
    sock.destroy();
    await closed;
    await hp.stop();
  });

  for (const [what, code, reason] of [
    ['crashes at start', 'process.exit(3);\n', /exited \(3\) before it was ready/],
    ['never signals ready', 'setInterval(() => {}, 1000);\nprocess.on("message", () => {});\n', /not ready within 1000 ms/],
  ] as const) {
    it(`a new worker that ${what} leaves the old ones serving and upgrade exits non-zero`, async () => {
      const install = copyInstall();
      try {
        const hp = await startHotproxy(['--upgrade-timeout', '1s', '--pid-file', join(install.dir, 'hp.pid')], undefined, { cli: install.cli });
        const workers = hp.workerPids();
        expect(workers).toHaveLength(1);
        const load = new Load(hp.url, 10);
        await waitFor(() => load.result.ok > 50, 'load to start');
        install.breakWorker(code);
        const r = await runCli(['upgrade', '--pid-file', join(install.dir, 'hp.pid')]);
        expect(r.status).toBe(1);
        expect(r.stderr.trim()).toMatch(/^hotproxy: upgrade failed: proxy worker \d+ /);
        expect(r.stderr).toMatch(reason);
        const ok = load.result.ok;
        await waitFor(() => load.result.ok > ok + 50, 'the old workers to keep serving');
        const result = await load.stop();
        expect(result.failed).toBe(0);
        expect(workers.every(isAlive)).toBe(true);
        expect(await hp.stop()).toBe(0);
      } finally {
        rmSync(install.dir, { recursive: true, force: true });
      }
    });
  }

  it('USR2s during an upgrade are coalesced into exactly one more upgrade', async () => {
    const hp = await startHotproxy([]);
    const load = new Load(hp.url, 10);
    hp.signal('SIGUSR2');
    await hp.waitForLog(UPGRADING);
    for (let i = 0; i < 3; i++) hp.signal('SIGUSR2');
    await waitFor(() => hp.logs.filter((l) => l.msg === UPGRADED).length === 2, 'two upgrades');
    // Give a wrongly queued third upgrade the chance to show before judging.
    const ok = load.result.ok;
    await waitFor(() => load.result.ok > ok + 200, 'traffic after the upgrades');
    expect(hp.logs.filter((l) => l.msg === UPGRADING)).toHaveLength(2);
    const result = await load.stop();
    expect(result.failed).toBe(0);
    await hp.stop();
  });

  it('a WebSocket stays on the retiring worker until it closes or the drain deadline cuts it', async () => {
    const hp = await startHotproxy(['--drain-timeout', '1500ms']);
    const [oldWorker] = hp.workerPids();
    const { ws, messages } = await openWebSocket(hp.port);
    const closed = new Promise((r) => ws.once('close', r));
    expect((await hp.upgrade()).msg).toBe(UPGRADED);
    ws.send('after upgrade');
    await waitFor(() => messages.length === 1, 'echo through the retiring worker');
    expect(isAlive(oldWorker!)).toBe(true);
    await closed;
    await waitFor(() => !isAlive(oldWorker!), 'the retiring worker to exit');
    await hp.stop();
  });

  it('in tcp mode open connections stay on the retiring worker and new ones go to the new one', async () => {
    const hp = await startHotproxy(['--mode', 'tcp', '--ready-delay', '200ms'], ['node', fixture('tcp-echo.js')]);
    const [oldWorker] = hp.workerPids();
    const a = net.connect(hp.port, '127.0.0.1');
    let got = '';
    a.on('data', (d) => (got += d));
    a.write('one\n');
    await waitFor(() => got.includes(':one'), 'echo');
    expect((await hp.upgrade()).msg).toBe(UPGRADED);
    a.write('two\n');
    await waitFor(() => got.includes(':two'), 'echo on the old connection');
    expect(isAlive(oldWorker!)).toBe(true);
    const b = net.connect(hp.port, '127.0.0.1');
    let gotB = '';
    b.on('data', (d) => (gotB += d));
    b.write('new\n');
    await waitFor(() => gotB.includes(':new'), 'echo on a new connection');
    a.end();
    b.end();
    await waitFor(() => !isAlive(oldWorker!), 'the retiring worker to exit once its connection closed');
    await hp.stop();
  });

  it('a deploy and an upgrade asked for together both happen, one after the other, with no failed request', async () => {
    const hp = await startHotproxy([]);
    const load = new Load(hp.url, 10);
    await waitFor(() => load.result.ok > 50, 'load to start');
    hp.signal('SIGHUP');
    hp.signal('SIGUSR2');
    await hp.waitForLog(DEPLOYED, (l) => l.gen === 2);
    await hp.waitForLog(UPGRADED);
    const ok = load.result.ok;
    await waitFor(() => load.result.ok > ok + 50, 'traffic after both');
    const result = await load.stop();
    expect(result.failed).toBe(0);
    expect(result.byGen.get(2)).toBeGreaterThan(0);
    await hp.stop();
  });
});
