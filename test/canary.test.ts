// Canary: `hotproxy reload --canary <percent>` starts green beside blue and sends that share of
// clients to it, sticky per client (the hotproxy-canary cookie, else the client address);
// `hotproxy promote` completes the deploy, `hotproxy rollback` ends it.
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CANARY_ENDED, CANARY_STARTED, DRAINED, PROMOTED, READY } from '../src/messages.js';
import { CANARY_COOKIE } from '../src/proxy/canary.js';
import { fixture, runCliIn, startHotproxy, type Hotproxy } from './helpers/hotproxy.js';
import { Load } from './helpers/load.js';
import { waitFor } from './helpers/wait.js';

const APP = fixture('node-app.js');

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'hp-canary-test-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const cli = (...args: string[]): ReturnType<typeof runCliIn> => runCliIn(dir, ...args);

/** One request from `localAddress` (each loopback address is another client), with `cookie` if given. */
function ask(hp: Hotproxy, localAddress: string, cookie?: string): Promise<{ gen: number; setCookie: string | undefined }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: hp.port, path: '/', localAddress, agent: false, headers: cookie ? { cookie } : {} }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => resolve({ gen: (JSON.parse(body) as { gen: number }).gen, setCookie: res.headers['set-cookie']?.[0] }));
    }).on('error', reject);
  });
}

const client = (i: number): string => `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`;

describe.each(['raw', 'node'])('a canary (%s engine)', (engine) => {
  it('gets its share of clients, each sticky by address or by the cookie it was given', async () => {
    const hp = await startHotproxy(['--engine', engine, '--runtime-dir', dir]);
    const r = await cli('reload', '--canary', '20', '--', 'node', APP);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^canary generation 2 \(pids \d+\) serves 20 % of clients: /);
    expect(await hp.waitForLog(CANARY_STARTED)).toMatchObject({ gen: 2, percent: 20, beside: 1 });
    const clients = 600;
    const first: Array<{ gen: number; setCookie: string | undefined }> = [];
    for (let i = 0; i < clients; i++) first.push(await ask(hp, client(i)));
    const share = first.filter((a) => a.gen === 2).length / clients;
    console.log(`${engine}: canary share over ${clients} clients: ${(share * 100).toFixed(1)} %`);
    expect(share).toBeGreaterThan(0.15);
    expect(share).toBeLessThan(0.25);
    // Each was told its side, and lands there again: by address without the cookie, and by the cookie from anywhere.
    for (let i = 0; i < 40; i++) {
      const { gen, setCookie } = first[i]!;
      expect(setCookie).toBe(`${CANARY_COOKIE}=${gen === 2 ? 'c' : 'm'}2; Path=/; HttpOnly; SameSite=Lax`);
      expect((await ask(hp, client(i))).gen).toBe(gen);
      const again = await ask(hp, client(clients + i), setCookie!.split(';')[0]);
      expect(again).toEqual({ gen, setCookie: undefined });
    }
    const s = JSON.parse((await cli('status', '--json')).stdout) as { canary: unknown; generations: Array<{ gen: number; state: string }> };
    expect(s.canary).toEqual({ gen: 2, percent: 20 });
    expect(s.generations.map((g) => [g.gen, g.state])).toEqual([[2, 'canary'], [1, 'active']]);
  });
});

describe('a canary under load', () => {
  it('promote: all traffic to it, the old generation drains, 0 failed; /metrics shows both', async () => {
    const hp = await startHotproxy(['--runtime-dir', dir, '--metrics', '127.0.0.1:0']);
    const load = new Load(hp.url, 6, '/', { timeoutMs: 15_000 });
    await waitFor(() => load.result.ok > 50, 'load to start');
    expect((await cli('reload', '--canary', '50')).status).toBe(0);
    // The load's one address is on one side; clients from other addresses reach the other.
    const sides = new Set<number>();
    for (let i = 0; sides.size < 2 && i < 200; i++) sides.add((await ask(hp, client(i))).gen);
    expect([...sides].sort()).toEqual([1, 2]);
    const metrics = await (await fetch(`http://${hp.find(READY)!.metrics as string}/metrics`)).text();
    expect(metrics).toMatch(/^hotproxy_requests_total\{gen="1",class="2xx"\} \d+$/m);
    expect(metrics).toMatch(/^hotproxy_requests_total\{gen="2",class="2xx"\} \d+$/m);
    // A deploy is refused while a canary runs.
    const refused = await cli('reload');
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/generation 2 is a canary: hotproxy promote or hotproxy rollback first/);
    const p = await cli('promote');
    expect(p.stderr).toBe('');
    expect(p.status).toBe(0);
    expect(hp.find(PROMOTED)).toMatchObject({ gen: 2, previous: 1 });
    await hp.waitForLog(DRAINED, (l) => l.gen === 1);
    for (let i = 0; i < 20; i++) expect((await ask(hp, client(i))).gen).toBe(2);
    const r = await load.stop();
    expect(r.errors).toEqual([]);
    expect(r.failed).toBe(0);
  });

  it('rollback ends it: all traffic back to the old generation, the canary drains, 0 failed', async () => {
    const hp = await startHotproxy(['--runtime-dir', dir]);
    const load = new Load(hp.url, 6, '/', { timeoutMs: 15_000 });
    await waitFor(() => load.result.ok > 50, 'load to start');
    expect((await cli('reload', '--canary', '50')).status).toBe(0);
    const back = await cli('rollback');
    expect(back.status).toBe(0);
    expect(hp.find(CANARY_ENDED)).toMatchObject({ gen: 1, canary: 2 });
    await hp.waitForLog(DRAINED, (l) => l.gen === 2);
    for (let i = 0; i < 20; i++) expect((await ask(hp, client(i))).gen).toBe(1);
    const r = await load.stop();
    expect(r.errors).toEqual([]);
    expect(r.failed).toBe(0);
    // Promote with no canary says so.
    const p = await cli('promote');
    expect(p.status).toBe(1);
    expect(p.stderr).toMatch(/no canary is running/);
  });
});
