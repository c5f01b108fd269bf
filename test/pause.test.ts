// hotproxy pause / resume: new requests are held (neither refused nor sent) while in-flight ones
// finish; pause returns once nothing is in flight; resume releases the held ones in order; at
// --max-pause the pause ends by itself and what it held gets 503. What reaches the backend is
// read from the backend itself, on its private socket, past the proxy: /count is the number
// of /seq requests it has received.
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEPLOYED, DRAINED, PAUSED, PAUSE_EXPIRED, RESUMED, UPGRADED } from '../src/messages.js';
import { runCli, startHotproxy, NODE_APP, type Hotproxy } from './helpers/hotproxy.js';
import { Load } from './helpers/load.js';
import { RawClient } from './helpers/raw-client.js';
import { isAlive, waitFor } from './helpers/wait.js';

/** Longer than any pause here: a held request is not a failed one unless it is answered so. */
const CLIENT_TIMEOUT_MS = 30_000;

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'hp-pause-test-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const cli = (...args: string[]): ReturnType<typeof runCli> => runCli([...args, '--runtime-dir', dir]);

interface Status {
  paused: { state: string; since: string; until: string; held: number } | null;
  generations: Array<{ gen: number; pids: number[] }>;
  workers: Array<{ pid: number; held: number | null }>;
}

async function status(): Promise<Status> {
  return JSON.parse((await cli('status', '--json')).stdout) as Status;
}

/** Waits until the pause holds `n` requests (or connections). */
function heldCount(n: number): Promise<Status> {
  return waitFor(async () => { const s = await status(); return s.paused?.held === n && s; }, `${n} held`);
}

type Answer = { status: number; body: Record<string, any>; at: number };

/** One request on a connection of its own. */
function get(url: string, socketPath?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get(socketPath ? { socketPath, path: url, agent: false } : { ...urlOptions(url), agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => {
        let body: Record<string, any> = {};
        try { body = JSON.parse(text) as Record<string, any>; } catch { /* a proxy answer */ }
        resolve({ status: res.statusCode!, body, at: Date.now() });
      });
    });
    req.on('error', reject);
  });
}

function urlOptions(url: string): http.RequestOptions {
  const u = new URL(url);
  return { host: u.hostname, port: u.port, path: `${u.pathname}${u.search}` };
}

/** The active backend's private socket, to ask it directly what it has received. */
async function backendSocket(hp: Hotproxy): Promise<string> {
  const { body } = await get(`${hp.url}/env`);
  return (body.env.SERVER_STARTER_PORT as string).replace(/=3$/, '');
}

async function received(socket: string): Promise<number> {
  return (await get('/count', socket)).body.seq as number;
}

describe.each(['raw', 'node'])('pause and resume (%s engine)', (engine) => {
  it('pause returns once the slow request finished; nothing reaches the backend, past --queue-timeout; resume: 0 failed', async () => {
    const hp = await startHotproxy(['--engine', engine, '--runtime-dir', dir, '--queue-timeout', '1s']);
    const socket = await backendSocket(hp);
    const load = new Load(hp.url, 6, '/seq', { timeoutMs: CLIENT_TIMEOUT_MS });
    await waitFor(() => load.result.ok > 50, 'load to start');
    let slowDone = false;
    const slow = get(`${hp.url}/slow?ms=1500`).then((a) => { slowDone = true; return a; });
    await hp.waitForLog('slow request started');
    const t0 = Date.now();
    const paused = await cli('pause');
    expect(paused.stderr).toBe('');
    expect(paused.status).toBe(0);
    expect(paused.stdout).toMatch(/^paused: nothing in flight \(waited \d+ ms\)/);
    expect(slowDone).toBe(true);
    expect((await slow).status).toBe(200);
    expect(hp.find(PAUSED)).toBeDefined();
    const okAtPause = load.result.ok;
    const seen = await received(socket);
    // Every connection's next request is held.
    const s = await heldCount(6);
    expect(s.paused!.state).toBe('paused');
    expect(Date.parse(s.paused!.until) - Date.parse(s.paused!.since)).toBeGreaterThanOrEqual(30_000);
    expect((await cli('status')).stdout).toMatch(/^ {2}paused \d+s since \S+ {2}ends by \S+ {2}held 6$/m);
    // Held for longer than --queue-timeout, which does not apply to them.
    await waitFor(() => Date.now() - t0 > 2_000, 'the pause to outlast --queue-timeout');
    expect(load.result.ok).toBe(okAtPause);
    expect(await received(socket)).toBe(seen);
    const resumed = await cli('resume');
    expect(resumed.status).toBe(0);
    expect(resumed.stdout.trim()).toMatch(/^resumed after \d+ ms; 6 held requests released in order$/);
    expect(hp.find(RESUMED)).toMatchObject({ held: 6 });
    await waitFor(() => load.result.ok > okAtPause + 100, 'load to flow again');
    const r = await load.stop();
    expect(r.errors).toEqual([]);
    expect(r.failed).toBe(0);
    expect((await status()).paused).toBeNull();
  });
});

describe('pause and resume', () => {
  it('in tcp mode: pause waits for open connections; a new one is held, not connected upstream, and served after resume', async () => {
    const hp = await startHotproxy(['--mode', 'tcp', '--runtime-dir', dir]);
    const open = await RawClient.open(hp.port);
    open.send('GET /seq HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await open.until((t) => t.includes('"seq":1'))).toContain('200 OK');
    let pauseDone = false;
    const pausing = cli('pause').then((r) => { pauseDone = true; return r; });
    await waitFor(async () => (await status()).paused?.state === 'pausing', 'the pause to wait for the open connection');
    const held = await RawClient.open(hp.port);
    held.send('GET /seq HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await heldCount(1);
    expect(pauseDone).toBe(false);
    open.close();
    const paused = await pausing;
    expect(paused.status).toBe(0);
    expect(held.text).toBe('');
    expect(held.closed).toBe(false);
    const resumed = await cli('resume');
    expect(resumed.stdout.trim()).toMatch(/; 1 held request released in order$/);
    // The backend's second /seq: nothing else reached it meanwhile.
    expect(await held.until((t) => t.includes('"seq":'))).toContain('"seq":2');
  });

  it('in tcp mode a USR2 during a pause cuts no held connection: the old worker retires once the pause ends', async () => {
    const hp = await startHotproxy(['--mode', 'tcp', '--runtime-dir', dir]);
    const [old] = hp.workerPids() as [number];
    expect((await cli('pause')).status).toBe(0);
    const first = await RawClient.open(hp.port);
    first.send('GET /seq HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await heldCount(1);
    expect((await cli('upgrade')).status).toBe(0);
    // Held wherever the kernel puts it: by the old worker, still waiting to retire, or a new one.
    const second = await RawClient.open(hp.port);
    second.send('GET /seq HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await heldCount(2);
    expect(first.closed || second.closed).toBe(false);
    expect((await cli('resume')).stdout.trim()).toMatch(/; 2 held requests released in order$/);
    const seqs = await Promise.all([first, second].map(async (c) => Number(/"seq":(\d+)/.exec(await c.until((t) => t.includes('"seq":')))?.[1])));
    expect(seqs.sort()).toEqual([1, 2]);
    await waitFor(() => !isAlive(old), 'the old worker to retire');
  });

  it('resume releases held requests in the order they came, on several connections and pipelined on one', async () => {
    const hp = await startHotproxy(['--runtime-dir', dir]);
    expect((await cli('pause')).status).toBe(0);
    const answers: Promise<Answer>[] = [];
    for (let i = 1; i <= 5; i++) {
      answers.push(get(`${hp.url}/seq`));
      await heldCount(i);
    }
    expect((await cli('resume')).status).toBe(0);
    const seqs = (await Promise.all(answers)).map((a) => a.body.seq as number);
    expect(seqs).toEqual([1, 2, 3, 4, 5]);

    expect((await cli('pause')).status).toBe(0);
    const c = await RawClient.open(hp.port);
    c.send('GET /seq HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(3));
    await heldCount(1);
    expect((await cli('resume')).status).toBe(0);
    const text = await c.until(() => c.count(200) === 3);
    expect([...text.matchAll(/"seq":(\d+)/g)].map((m) => Number(m[1]))).toEqual([6, 7, 8]);
    c.close();
  });

  it('past --max-pause the held requests get 503, the pause ends by itself and requests flow again', async () => {
    const hp = await startHotproxy(['--runtime-dir', dir]);
    expect((await cli('pause', '--max-pause', '0')).status).toBe(2);
    const t0 = Date.now();
    const paused = await cli('pause', '--max-pause', '1500ms');
    expect(paused.status).toBe(0);
    const held = [1, 2, 3].map(() => get(`${hp.url}/seq`));
    await heldCount(3);
    const answers = await Promise.all(held);
    expect(answers.map((a) => a.status)).toEqual([503, 503, 503]);
    for (const a of answers) expect(a.at - t0).toBeGreaterThanOrEqual(1_500);
    expect(await hp.waitForLog(PAUSE_EXPIRED)).toMatchObject({ held: 3, maxPauseMs: 1500 });
    const after = await get(`${hp.url}/seq`);
    expect(after.status).toBe(200);
    expect(after.body.seq).toBe(1);
    expect((await status()).paused).toBeNull();
    const resumed = await cli('resume');
    expect(resumed.status).toBe(0);
    expect(resumed.stdout.trim()).toBe('not paused; nothing to resume');
  });

  it('a pause that reaches --max-pause before nothing is in flight fails, and the slow request still finishes', async () => {
    const hp = await startHotproxy(['--runtime-dir', dir]);
    const slow = get(`${hp.url}/slow?ms=3000`);
    await hp.waitForLog('slow request started');
    const paused = await cli('pause', '--max-pause', '1s');
    expect(paused.status).toBe(1);
    expect(paused.stderr.trim()).toBe('hotproxy: pause failed: the pause ended before nothing was in flight: --max-pause (1000 ms) passed; what it held got 503');
    expect((await slow).status).toBe(200);
    expect((await get(`${hp.url}/seq`)).status).toBe(200);
  });

  it('a HUP during a pause deploys; the requests stay held and go to the new generation on resume, 0 failed', async () => {
    const hp = await startHotproxy(['--runtime-dir', dir]);
    const [blue] = hp.activePids() as [number];
    const load = new Load(hp.url, 4, '/seq', { timeoutMs: CLIENT_TIMEOUT_MS });
    await waitFor(() => load.result.ok > 50, 'load to start');
    expect((await cli('pause')).status).toBe(0);
    const okAtPause = load.result.ok;
    await heldCount(4);
    const deployed = await hp.reload();
    expect(deployed.msg).toBe(DEPLOYED);
    const green = (deployed.pids as number[])[0]!;
    // Blue had nothing in flight: it drains and stops at once, while the requests are held.
    await hp.waitForLog(DRAINED, (l) => l.gen === 1);
    const s = await status();
    expect(s.paused?.held).toBe(4);
    expect(s.generations.map((g) => g.gen)).toEqual([2]);
    expect(load.result.ok).toBe(okAtPause);
    expect((await cli('resume')).status).toBe(0);
    await waitFor(() => load.servedBy(green) > 50, 'the new generation to serve');
    const r = await load.stop();
    expect(r.errors).toEqual([]);
    expect(r.failed).toBe(0);
    expect(load.servedBy(blue)).toBe(okAtPause);
  });

  it('with --proxy-workers 2 every worker pauses, and a USR2 during the pause starts new workers paused; 0 failed', async () => {
    const hp = await startHotproxy(['--runtime-dir', dir], NODE_APP, { proxyWorkers: 2 });
    const socket = await backendSocket(hp);
    const before = hp.workerPids();
    const load = new Load(hp.url, 6, '/seq', { timeoutMs: CLIENT_TIMEOUT_MS });
    await waitFor(() => load.result.ok > 50, 'load to start');
    let slowDone = false;
    const slow = get(`${hp.url}/slow?ms=1500`).then((a) => { slowDone = true; return a; });
    await hp.waitForLog('slow request started');
    expect((await cli('pause')).status).toBe(0);
    expect(slowDone).toBe(true);
    expect((await slow).status).toBe(200);
    const okAtPause = load.result.ok;
    const seen = await received(socket);
    await heldCount(6);

    const up = await cli('upgrade');
    expect(up.stderr).toBe('');
    expect(up.status).toBe(0);
    // The CLI's answer can come before the master's log line reaches this process.
    const after = (await hp.waitForLog(UPGRADED)).workers as number[];
    expect(after.some((p: number) => before.includes(p))).toBe(false);
    // New connections go to the new workers (the old ones stopped accepting): held there too.
    const fresh = [1, 2, 3, 4].map(() => get(`${hp.url}/seq`));
    const s = await heldCount(10);
    expect(s.workers.filter((w) => after.includes(w.pid)).reduce((n, w) => n + (w.held ?? 0), 0)).toBe(4);
    expect(await received(socket)).toBe(seen);
    expect(load.result.ok).toBe(okAtPause);

    const resumed = await cli('resume');
    expect(resumed.stdout.trim()).toMatch(/; 10 held requests released in order$/);
    expect((await Promise.all(fresh)).map((a) => a.status)).toEqual([200, 200, 200, 200]);
    await waitFor(() => load.result.ok > okAtPause + 100, 'load to flow again');
    const r = await load.stop();
    expect(r.errors).toEqual([]);
    expect(r.failed).toBe(0);
  });
});
