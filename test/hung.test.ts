// Backends that hang, stall or slow down: --backend-timeout, continuous health checks, and
// replacing an instance that stays out of rotation. A SIGSTOPped process is the hung app:
// its socket still accepts (the kernel does that), it just never answers.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BACKEND_BACK, BACKEND_OUT, BACKEND_REPLACED, DEPLOYED, READY, REPLACING_BACKEND } from '../src/messages.js';
import { runCli, startHotproxy, type Hotproxy } from './helpers/hotproxy.js';
import { Load } from './helpers/load.js';
import { RawClient } from './helpers/raw-client.js';
import { isAlive, waitFor } from './helpers/wait.js';

/** A client gives up on a request after this long: a hung request counts as failed. */
const CLIENT_TIMEOUT_MS = 15_000;
const LIVE = ['--live-interval', '200ms', '--health-timeout', '500ms', '--health-fall', '2', '--drain-timeout', '2s'];

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'hp-hung-test-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function stop(pid: number): void {
  process.kill(pid, 'SIGSTOP');
}

interface Status {
  generations: Array<{ gen: number; healthy: number; size: number; instances: Array<{ pid: number; health: string; reason?: string }> }>;
}

async function status(): Promise<Status> {
  const r = await runCli(['status', '--json', '--runtime-dir', dir]);
  return JSON.parse(r.stdout) as Status;
}

async function metrics(hp: Hotproxy): Promise<string> {
  return (await fetch(`http://${hp.find(READY)!.metrics as string}/metrics`)).text();
}

describe.each(['raw', 'node'])('a hung instance (%s engine)', (engine) => {
  it('of two leaves rotation, is replaced, and no request fails', async () => {
    const hp = await startHotproxy(['--engine', engine, '--workers', '2', ...LIVE, '--unhealthy-restart', '1s', '--runtime-dir', dir, '--metrics', '127.0.0.1:0']);
    const [hung, sibling] = hp.activePids() as [number, number];
    const load = new Load(hp.url, 8, '/', { timeoutMs: CLIENT_TIMEOUT_MS });
    await waitFor(() => load.servedBy(hung) > 20 && load.servedBy(sibling) > 20, 'both instances to serve');
    const t0 = Date.now();
    stop(hung);
    const out = await hp.waitForLog(BACKEND_OUT, (l) => l.backendPid === hung);
    const outMs = (out.time as number) - t0;
    const replaced = await hp.waitForLog(BACKEND_REPLACED);
    const replacedMs = (replaced.time as number) - t0;
    const fresh = replaced.backendPid as number;
    await waitFor(() => load.servedBy(fresh) > 20, 'the replacement to serve');
    const servedByHung = load.servedBy(hung);
    await waitFor(() => load.result.ok > servedByHung + 200, 'more load');
    const r = await load.stop();
    console.log(`${engine}: SIGSTOP → out of rotation ${outMs} ms, → replaced ${replacedMs} ms; ${r.ok} ok, ${r.failed} failed`);
    expect(r.errors).toEqual([]);
    expect(r.failed).toBe(0);
    expect(load.servedBy(hung)).toBe(servedByHung);
    expect(hp.find(REPLACING_BACKEND, (l) => l.backendPid === hung)).toBeDefined();
    // The stopped process cannot act on SIGTERM: it is SIGKILLed after --drain-timeout.
    await waitFor(() => !isAlive(hung), 'the hung process to be killed', 10_000);
    const s = await status();
    expect(s.generations[0]!.healthy).toBe(2);
    expect(s.generations[0]!.instances.map((i) => i.health)).toEqual(['healthy', 'healthy']);
    expect(await metrics(hp)).toMatch(/^hotproxy_backend_restarts_total\{reason="unhealthy"\} 1$/m);
    // A deploy afterwards works as usual.
    expect((await hp.reload()).msg).toBe(DEPLOYED);
  });

  it('of one: new requests wait and are served by its replacement', async () => {
    const hp = await startHotproxy(['--engine', engine, '--workers', '1', ...LIVE, '--unhealthy-restart', '1s', '--queue-timeout', '10s']);
    const [hung] = hp.activePids() as [number];
    const load = new Load(hp.url, 4, '/', { timeoutMs: CLIENT_TIMEOUT_MS });
    await waitFor(() => load.servedBy(hung) > 20, 'the instance to serve');
    const t0 = Date.now();
    stop(hung);
    const replaced = await hp.waitForLog(BACKEND_REPLACED);
    const fresh = replaced.backendPid as number;
    await waitFor(() => load.servedBy(fresh) > 50, 'the replacement to serve');
    const r = await load.stop();
    console.log(`${engine}, one instance: SIGSTOP → replaced ${(replaced.time as number) - t0} ms; ${r.ok} ok, ${r.failed} failed`);
    expect(r.errors).toEqual([]);
    expect(r.failed).toBe(0);
  });
});

describe.each(['raw', 'node'])('--backend-timeout (%s engine)', (engine) => {
  it('an answer slower than the timeout gets 504 at about the timeout, and the connection serves its next request', async () => {
    const hp = await startHotproxy(['--engine', engine, '--backend-timeout', '1s']);
    const c = await RawClient.open(hp.port);
    for (const method of ['GET', 'POST']) {
      const before = c.text.length;
      const t0 = Date.now();
      c.send(`${method} /slow?ms=4000 HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n`);
      await c.until((t) => t.length > before && t.slice(before).includes('\r\n\r\n') && t.slice(before).includes('Gateway Timeout\n'), '504');
      const ms = Date.now() - t0;
      expect(c.text.slice(before)).toMatch(/^HTTP\/1\.1 504 Gateway Timeout\r\n/);
      expect(ms).toBeGreaterThanOrEqual(950);
      expect(ms).toBeLessThan(2_500);
    }
    const before = c.text.length;
    c.send('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    await c.until((t) => /"pid":\d+/.test(t.slice(before)), 'the next answer');
    expect(c.text.slice(before)).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(c.closed).toBe(false);
    c.close();
  });

  it('a backend that stalls mid-body: the client connection is cut at the timeout, never a short body that looks complete', async () => {
    const hp = await startHotproxy(['--engine', engine, '--backend-timeout', '1s']);
    const c = await RawClient.open(hp.port, false);
    const t0 = Date.now();
    c.send('GET /stall HTTP/1.1\r\nhost: x\r\n\r\n');
    await waitFor(() => c.closed, 'the cut', 10_000);
    const ms = c.closedAt - t0;
    expect(ms).toBeGreaterThanOrEqual(950);
    expect(ms).toBeLessThan(3_000);
    expect(c.received).toBeGreaterThan(64 << 10);
    expect(c.received).toBeLessThan(1 << 20);
  });

  it('a backend that stops reading an upload gets 504 at about the timeout, not an endless wait', async () => {
    const hp = await startHotproxy(['--engine', engine, '--backend-timeout', '1s']);
    const c = await RawClient.open(hp.port);
    const size = 16 << 20;
    const t0 = Date.now();
    c.send(`POST /stallup HTTP/1.1\r\nhost: x\r\ncontent-length: ${size}\r\n\r\n`).send(Buffer.alloc(size, 117));
    await c.until((t) => t.includes('Gateway Timeout\n'), '504');
    const ms = Date.now() - t0;
    expect(c.text).toMatch(/^HTTP\/1\.1 504 Gateway Timeout\r\n/);
    expect(ms).toBeGreaterThanOrEqual(950);
    expect(ms).toBeLessThan(3_000);
    c.close();
  });
});

describe('health checks that flap', () => {
  it('an instance that fails and passes by turns leaves and rejoins rotation but is never restarted', async () => {
    const hp = await startHotproxy(
      ['--health-path', '/flap', '--live-interval', '100ms', '--health-fall', '2', '--health-rise', '1', '--unhealthy-restart', '2s'],
      undefined, { env: { APP_FLAP_MS: '600' } },
    );
    await waitFor(() => hp.logs.filter((l) => l.msg === BACKEND_BACK).length >= 3, 'three returns to rotation', 20_000);
    expect(hp.logs.filter((l) => l.msg === BACKEND_OUT).length).toBeGreaterThanOrEqual(3);
    expect(hp.find(REPLACING_BACKEND)).toBeUndefined();
  });
});

describe('every instance unhealthy', () => {
  it('requests queue then get 503, and a HUP deploy is the way out', async () => {
    const hp = await startHotproxy(['--workers', '1', ...LIVE, '--unhealthy-restart', '60s', '--queue-timeout', '500ms', '--runtime-dir', dir]);
    const [hung] = hp.activePids() as [number];
    stop(hung);
    await hp.waitForLog(BACKEND_OUT, (l) => l.backendPid === hung);
    const [instance] = (await status()).generations[0]!.instances;
    expect(instance).toMatchObject({ pid: hung, health: 'unhealthy', reason: 'GET / got no answer within 500 ms' });
    const res = await fetch(`${hp.url}/`);
    expect(res.status).toBe(503);
    expect((await hp.reload()).msg).toBe(DEPLOYED);
    const after = await fetch(`${hp.url}/`);
    expect(after.status).toBe(200);
    await waitFor(() => !isAlive(hung), 'the hung generation to be killed', 10_000);
  });
});
