// The admin listener: Prometheus metrics scraped while hotproxy deploys and upgrades, and the
// proxy's own readiness. It is never served on a public listener.
import { describe, expect, it } from 'vitest';
import { runCli, startHotproxy, type Hotproxy } from './helpers/hotproxy.js';
import { Load } from './helpers/load.js';
import { waitFor } from './helpers/wait.js';
import { BACKEND_RESTART_FAILED, DEPLOYED, READY, UPGRADED } from '../src/messages.js';

const adminUrl = (hp: Hotproxy): string => `http://${hp.find(READY)!.metrics as string}`;

async function scrape(hp: Hotproxy): Promise<Map<string, number>> {
  const res = await fetch(`${adminUrl(hp)}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const m = /^(\w+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

const requests = (m: Map<string, number>, gen: number, cls = '2xx'): number => m.get(`hotproxy_requests_total{gen="${gen}",class="${cls}"}`) ?? 0;
const sumOf = (m: Map<string, number>, prefix: string): number => [...m].filter(([k]) => k.startsWith(prefix)).reduce((a, [, v]) => a + v, 0);

describe('metrics', () => {
  it('scraped during a swap: requests by generation and class, deploys, in-flight, with no failed request', async () => {
    const hp = await startHotproxy(['--metrics', '127.0.0.1:0', '--proxy-workers', '2']);
    const load = new Load(hp.url, 10);
    await waitFor(() => load.result.ok > 50, 'load');
    let scrapes = 0;
    let scraping = true;
    const scraper = (async () => {
      while (scraping) { await scrape(hp); scrapes++; }
    })();
    expect((await hp.reload()).msg).toBe(DEPLOYED);
    await waitFor(() => (load.result.byGen.get(2) ?? 0) > 50, 'traffic on generation 2');
    const result = await load.stop();
    scraping = false;
    await scraper;
    expect(result.failed).toBe(0);
    expect(scrapes).toBeGreaterThan(5);

    const m = await scrape(hp);
    expect(requests(m, 1)).toBeGreaterThan(0);
    expect(requests(m, 2)).toBeGreaterThan(0);
    // Every request the client saw answered is counted (the scrape sees both workers).
    expect(requests(m, 1) + requests(m, 2)).toBeGreaterThanOrEqual(result.ok);
    expect(m.get('hotproxy_deploys_total{outcome="ok"}')).toBe(2);
    expect(m.get('hotproxy_deploys_total{outcome="failed"}')).toBe(0);
    expect(m.get('hotproxy_active_generation')).toBe(2);
    expect(m.get('hotproxy_request_duration_seconds_count')).toBe(requests(m, 1) + requests(m, 2));
    expect(m.get('hotproxy_deploy_duration_seconds_count')).toBe(2);
    expect(m.has('hotproxy_open_connections')).toBe(true);
    expect(m.has('hotproxy_master_process_cpu_seconds_total')).toBe(true);
    expect(await hp.stop()).toBe(0);
  });

  it('counters do not go backwards when an upgrade replaces the proxy workers', async () => {
    const hp = await startHotproxy(['--metrics', '127.0.0.1:0']);
    for (let i = 0; i < 20; i++) expect((await fetch(hp.url)).status).toBe(200);
    const before = await scrape(hp);
    expect(requests(before, 1)).toBe(20);
    expect((await hp.upgrade()).msg).toBe(UPGRADED);
    for (let i = 0; i < 5; i++) expect((await fetch(hp.url)).status).toBe(200);
    const after = await scrape(hp);
    expect(requests(after, 1)).toBe(25);
    expect(after.get('hotproxy_upgrades_total{outcome="ok"}')).toBe(1);
    expect(await hp.stop()).toBe(0);
  });

  it('counts backend restart attempts and the proxy\'s own 503s', async () => {
    // Generation 1 starts fine; every restart of it exits at once.
    const hp = await startHotproxy(['--metrics', '127.0.0.1:0', '--queue-timeout', '200ms'], undefined, { env: { APP_FAIL_FROM_GEN: '1', APP_FAIL_MODE: 'exit-on-restart' } });
    process.kill(hp.activePids()[0]!, 'SIGKILL');
    await hp.waitForLog(BACKEND_RESTART_FAILED);
    expect((await fetch(hp.url)).status).toBe(503);
    const m = await scrape(hp);
    expect(m.get('hotproxy_backend_restarts_total{reason="exit"}')).toBeGreaterThanOrEqual(1);
    expect(m.get('hotproxy_backend_restarts_total{reason="unhealthy"}')).toBe(0);
    expect(m.get('hotproxy_proxy_responses_total{status="503"}')).toBe(1);
    expect(sumOf(m, 'hotproxy_requests_total{gen="0",class="5xx"}')).toBe(1);
    expect(await hp.stop()).toBe(0);
  });

  it('/ready is 200 while serving and 503 while stopping, /live is 200, and the public port serves none of them', async () => {
    const hp = await startHotproxy(['--metrics', '127.0.0.1:0']);
    expect((await fetch(`${adminUrl(hp)}/ready`)).status).toBe(200);
    expect((await fetch(`${adminUrl(hp)}/live`)).status).toBe(200);
    for (const path of ['/metrics', '/ready', '/live']) {
      // The backend answers these on the public port: JSON with its pid.
      expect(await (await fetch(`${hp.url}${path}`)).json()).toHaveProperty('pid');
    }
    const slow = fetch(`${hp.url}/slow?ms=1500`);
    await hp.waitForLog('slow request started');
    hp.signal('SIGTERM');
    await waitFor(async () => (await fetch(`${adminUrl(hp)}/ready`)).status === 503, '/ready to turn 503');
    expect((await slow).status).toBe(200);
    expect(await hp.exited).toBe(0);
  });

  it('--metrics on a public --listen address is one line on stderr and exit 2', async () => {
    const r = await runCli(['--listen', '127.0.0.1:8080', '--metrics', '127.0.0.1:8080', '--', 'node', 'app.js']);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('--metrics must be an address of its own');
  });
});
