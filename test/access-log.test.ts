// The access log (--access-log) and request IDs, through real processes: every request the
// clients sent has exactly one line, and each line says what the client and the backend saw.
import http from 'node:http';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ACCESS_LOG_REOPENED, ACCESS_LOG_WRITE_FAILED, BACKEND_RESTART_FAILED } from '../src/messages.js';
import { NODE_APP, startHotproxy } from './helpers/hotproxy.js';
import { RawClient } from './helpers/raw-client.js';
import { waitFor } from './helpers/wait.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** The fixture says on every answer which pid answered and the X-Request-ID it got. */
const ECHO = { APP_ECHO_ID: '1' };

interface Line {
  time: string; method: string; target: string; status: number; bytes: number; durationMs: number; ttfbMs: number | null;
  gen: number | null; instance: number | null; attempts: number; client: string | null; requestId: string; userAgent: string | null;
  cut?: string;
}

interface Answer { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

function send(port: number, method: string, path: string, opts: { ua?: string; body?: string; headers?: Record<string, string>; agent?: http.Agent } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.ua !== undefined) headers['user-agent'] = opts.ua;
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: opts.agent ?? false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

function readLines(path: string): Line[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);
}

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'hp-access-log-test-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe.each(['raw', 'node'])('the access log (%s engine)', (engine) => {
  it('has one line per request, each saying what the client got and which backend answered', async () => {
    const log = join(dir, 'access.log');
    // Restarts of the backend fail, so that once it is killed requests get 503.
    const hp = await startHotproxy(['--engine', engine, '--access-log', log, '--backend-timeout', '1s', '--queue-timeout', '300ms'], NODE_APP,
      { env: { ...ECHO, APP_FAIL_FROM_GEN: '1', APP_FAIL_MODE: 'exit-on-restart' } });
    const [pid] = hp.activePids() as [number];
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const t0 = Date.now();
    const sent: Array<{ method: string; target: string; ua: string; answer: Answer }> = [];
    const ask = async (method: string, target: string, body?: string): Promise<Answer> => {
      const ua = `access-log-test/${sent.length}`;
      const answer = await send(hp.port, method, target, { ua, body, agent });
      sent.push({ method, target, ua, answer });
      return answer;
    };
    expect((await ask('GET', '/headers?x=1')).status).toBe(200);
    expect((await ask('HEAD', '/headers')).status).toBe(200);
    expect((await ask('POST', '/echo', 'hello, backend')).status).toBe(200);
    expect((await ask('GET', '/status?code=404')).status).toBe(404);
    expect((await ask('GET', '/bytes?n=10000&chunked=1')).headers['transfer-encoding']).toBe('chunked');
    expect((await ask('GET', '/bytes?n=3000000')).body.length).toBe(3_000_000);
    expect((await ask('GET', '/garbage')).status).toBe(502);
    expect((await ask('GET', '/slow?ms=3000')).status).toBe(504);
    process.kill(pid, 'SIGKILL');
    await hp.waitForLog(BACKEND_RESTART_FAILED);
    expect((await ask('GET', '/')).status).toBe(503);
    agent.destroy();
    // Stopped, every worker has written what it had.
    await hp.stop();
    const lines = readLines(log);
    expect(lines).toHaveLength(sent.length);
    const backendMade = new Set([200, 404]);
    for (const { method, target, ua, answer } of sent) {
      const mine = lines.filter((l) => l.userAgent === ua);
      expect(mine, ua).toHaveLength(1);
      const l = mine[0]!;
      expect(l, ua).toMatchObject({ method, target, status: answer.status, bytes: answer.body.length, client: '127.0.0.1', userAgent: ua });
      expect(l.cut, ua).toBeUndefined();
      const at = Date.parse(l.time);
      expect(at, ua).toBeGreaterThanOrEqual(t0 - 5);
      expect(at + l.durationMs, ua).toBeLessThanOrEqual(Date.now());
      expect(l.requestId, ua).toMatch(UUID);
      if (backendMade.has(answer.status)) {
        expect(l, ua).toMatchObject({ gen: 1, instance: Number(answer.headers['x-pid']), attempts: 1, requestId: answer.headers['x-got-request-id'] });
        expect(l.ttfbMs, ua).toBeGreaterThan(0);
        expect(l.ttfbMs!, ua).toBeLessThanOrEqual(l.durationMs);
      }
    }
    const byTarget = (t: string): Line => lines.find((l) => l.target === t)!;
    expect(byTarget('/headers?x=1').requestId).toBe(JSON.parse(sent[0]!.answer.body.toString()).headers['x-request-id']);
    expect(byTarget('/headers').bytes).toBe(0); // HEAD
    expect(byTarget('/bytes?n=3000000').bytes).toBe(3_000_000);
    // The proxy's own answers: the instance it last tried, or none at all.
    expect(byTarget('/garbage')).toMatchObject({ status: 502, gen: 1, instance: pid, attempts: 1 });
    expect(byTarget('/slow?ms=3000')).toMatchObject({ status: 504, gen: 1, instance: pid, attempts: 1, ttfbMs: null });
    expect(byTarget('/slow?ms=3000').durationMs).toBeGreaterThanOrEqual(950);
    expect(byTarget('/')).toMatchObject({ status: 503, gen: null, instance: null, attempts: 0, ttfbMs: null });
    expect(byTarget('/').durationMs).toBeGreaterThanOrEqual(250);
  });

  it('a request sent again after its backend died has one line, for its outcome', async () => {
    const log = join(dir, 'access.log');
    // Two instances: the request goes again to the sibling, not to a restart that may be slow.
    const hp = await startHotproxy(['--engine', engine, '--access-log', log, '--workers', '2'], NODE_APP, { env: ECHO });
    const pending = send(hp.port, 'GET', '/slow?ms=300', { ua: 'retried' });
    const started = await hp.waitForLog('slow request started');
    const pid = started.backendPid as number;
    process.kill(pid, 'SIGKILL');
    const answer = await pending;
    expect(answer.status).toBe(200);
    const fresh = Number(answer.headers['x-pid']);
    expect(fresh).not.toBe(pid);
    await hp.stop();
    const lines = readLines(log).filter((l) => l.userAgent === 'retried');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ status: 200, instance: fresh, requestId: answer.headers['x-got-request-id'] });
    expect(lines[0]!.attempts).toBeGreaterThanOrEqual(2);
  });

  it("keeps a trusted proxy's X-Request-ID, replaces an untrusted client's, and makes one with no access log", async () => {
    const log = join(dir, 'access.log');
    const trusted = await startHotproxy(['--engine', engine, '--trust-proxy', '127.0.0.1', '--access-log', log]);
    const kept = JSON.parse((await send(trusted.port, 'GET', '/headers', { headers: { 'x-request-id': 'edge-1234' } })).body.toString());
    expect(kept.headers['x-request-id']).toBe('edge-1234');
    await trusted.stop();
    expect(readLines(log).map((l) => l.requestId)).toEqual(['edge-1234']);

    // To stdout this time: the lines come with the log.
    const untrusted = await startHotproxy(['--engine', engine, '--trust-proxy', '10.0.0.0/8', '--access-log', 'stdout']);
    const replaced = JSON.parse((await send(untrusted.port, 'GET', '/headers', { headers: { 'x-request-id': 'forged' } })).body.toString());
    expect(replaced.headers['x-request-id']).toMatch(UUID);
    const line = await waitFor(() => untrusted.logs.find((l) => l.requestId !== undefined), 'the access log line');
    expect(line).toMatchObject({ target: '/headers', status: 200, requestId: replaced.headers['x-request-id'] });
    await untrusted.stop();

    const plain = await startHotproxy(['--engine', engine]);
    const ids = await Promise.all([1, 2].map(async () => JSON.parse((await send(plain.port, 'GET', '/headers')).body.toString()).headers['x-request-id']));
    for (const id of ids) expect(id).toMatch(UUID);
    expect(ids[0]).not.toBe(ids[1]);
  });

  it('SIGUSR1 reopens the file in every proxy worker: later requests go to the new one, none lost between the two', async () => {
    const log = join(dir, 'access.log');
    const hp = await startHotproxy(['--engine', engine, '--access-log', log], NODE_APP, { proxyWorkers: 2, env: ECHO });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const ids: string[] = [];
    const afterReopen = new Set<string>();
    let reopened = false;
    let running = true;
    const loop = async (): Promise<void> => {
      while (running) {
        const late = reopened;
        const a = await send(hp.port, 'GET', '/', { agent });
        const id = a.headers['x-got-request-id'] as string;
        ids.push(id);
        if (late) afterReopen.add(id);
      }
    };
    const loops = [loop(), loop(), loop(), loop()];
    await waitFor(() => ids.length > 100, 'requests before the rotation');
    renameSync(log, `${log}.1`);
    const from = hp.logs.length;
    hp.signal('SIGUSR1');
    await waitFor(() => hp.logs.slice(from).filter((l) => l.msg === ACCESS_LOG_REOPENED).length === 2, 'both workers to reopen');
    reopened = true;
    await waitFor(() => afterReopen.size > 100, 'requests after the rotation');
    running = false;
    await Promise.all(loops);
    agent.destroy();
    await hp.stop();
    const rotated = readLines(`${log}.1`).map((l) => l.requestId);
    const current = readLines(log).map((l) => l.requestId);
    expect(rotated.length).toBeGreaterThan(100);
    expect([...rotated, ...current].sort()).toEqual([...ids].sort());
    const inCurrent = new Set(current);
    expect([...afterReopen].filter((id) => !inCurrent.has(id))).toEqual([]);
    // Node's own meaning of SIGUSR1, had the master no handler: its inspector, open to anyone on the host.
    expect(hp.stderr).not.toContain('Debugger listening');
  });

  it('--proxy-workers 2 write one file: every line whole, every request in it', async () => {
    const log = join(dir, 'access.log');
    const hp = await startHotproxy(['--engine', engine, '--access-log', log], NODE_APP, { proxyWorkers: 2 });
    // Connections until both workers have some, so both write.
    const conns: RawClient[] = [];
    await waitFor(async () => {
      conns.push(await RawClient.open(hp.port));
      const s = await hp.status();
      return s !== undefined && s.workers.length === 2 && s.workers.every((w: { connections: number }) => w.connections > 0);
    }, 'connections on both workers', 20_000);
    // Lines of a few KiB each, many at once from both workers: a batch holds many of them.
    const PER_CONN = 40;
    const pad = (c: number, i: number): number => 1000 + ((c * 7919 + i * 104_729) % 5000);
    conns.forEach((c, ci) => {
      let text = '';
      for (let i = 0; i < PER_CONN; i++) text += `GET /?c=${ci}&i=${i}&pad=${'x'.repeat(pad(ci, i))} HTTP/1.1\r\nhost: x\r\nuser-agent: ua-${'y'.repeat(pad(i, ci))}\r\n\r\n`;
      c.send(text);
    });
    await Promise.all(conns.map((c) => c.until(() => c.count(200) === PER_CONN, 'the answers', 30_000)));
    for (const c of conns) c.close();
    await hp.stop();
    const text = readFileSync(log, 'utf8');
    const raw = text.split('\n');
    expect(raw.pop()).toBe('');
    const lines = raw.map((l) => JSON.parse(l) as Line);
    expect(lines).toHaveLength(conns.length * PER_CONN);
    const seen = new Set<string>();
    for (const l of lines) {
      const m = /^\/\?c=(\d+)&i=(\d+)&pad=(x*)$/.exec(l.target)!;
      const [c, i] = [Number(m[1]), Number(m[2])];
      expect(m[3]!.length).toBe(pad(c, i));
      expect(l.userAgent!.length).toBe(3 + pad(i, c));
      seen.add(`${c}/${i}`);
    }
    expect(seen.size).toBe(conns.length * PER_CONN);
  });
});

describe('an access log file that stops taking lines', () => {
  it('is said once in the log, and requests are served on', async () => {
    const hp = await startHotproxy(['--access-log', '/dev/full']);
    for (let i = 0; i < 20; i++) expect((await send(hp.port, 'GET', '/')).status).toBe(200);
    await hp.waitForLog(ACCESS_LOG_WRITE_FAILED);
    for (let i = 0; i < 20; i++) expect((await send(hp.port, 'GET', '/')).status).toBe(200);
    expect(hp.logs.filter((l) => l.msg === ACCESS_LOG_WRITE_FAILED)).toHaveLength(1);
  });
});
