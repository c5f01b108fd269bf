import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
// The helper as an app imports it: by package name, from the built dist.
import { listen, ListenError } from 'hotproxy/app';
import { fixture, startHotproxy, type Hotproxy, type LogLine } from './helpers/hotproxy.js';
import { Load } from './helpers/load.js';
import { isAlive, waitFor } from './helpers/wait.js';
import { swapsWithoutFailures } from './helpers/swaps.js';
import { DEPLOYED, DRAINED, DRAINING, DRAIN_DEADLINE } from '../src/messages.js';

const APP = ['node', fixture('app-helper.js')];

/** The fixture run alone, as `node app.js` would be. */
class App {
  lines: string[] = [];
  code: number | null | undefined;
  readonly exited: Promise<number | null>;

  constructor(env: NodeJS.ProcessEnv, stdio: (number | 'pipe' | 'ignore')[] = ['ignore', 'pipe', 'pipe']) {
    const env1 = { ...process.env };
    for (const k of ['PORT', 'LISTEN_FDS', 'LISTEN_PID', 'SERVER_STARTER_PORT', 'HOTPROXY_GENERATION']) delete env1[k];
    this.proc = spawn(process.execPath, [fixture('app-helper.js')], { env: { ...env1, ...env }, stdio });
    let buf = '';
    this.proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      this.lines.push(...parts);
    });
    this.proc.stderr!.on('data', (d: Buffer) => this.lines.push(`stderr: ${d}`));
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => { this.code = code; resolve(code); }));
    apps.add(this);
  }

  readonly proc: ChildProcess;

  waitLine(prefix: string): Promise<string> {
    return waitFor(() => {
      const l = this.lines.find((x) => x.startsWith(prefix));
      if (!l && this.code !== undefined) throw new Error(`app exited (${this.code}): ${this.lines.join('\n')}`);
      return l;
    }, `app line "${prefix}"`, 10_000);
  }

  async listening(): Promise<{ address: net.AddressInfo | string; source: string; fd?: number }> {
    return JSON.parse((await this.waitLine('listening ')).slice('listening '.length));
  }
}

const apps = new Set<App>();
afterEach(async () => {
  const leaked = [...apps].filter((a) => a.code === undefined);
  for (const a of leaked) a.proc.kill('SIGKILL');
  await Promise.all(leaked.map((a) => a.exited));
  apps.clear();
  if (leaked.length) throw new Error(`app processes outlived their test: ${leaked.map((a) => a.proc.pid).join(', ')}`);
});

interface Response { status: number; headers: Record<string, string>; body: string }

/** One raw keep-alive connection, so the test sees exactly what the server does to it. */
class Conn {
  private buf = '';
  readonly sock: net.Socket;
  error: Error | undefined;
  ended = false;
  closedAt: number | undefined;

  constructor(port: number) {
    this.sock = net.connect(port, '127.0.0.1');
    this.sock.setEncoding('latin1');
    this.sock.on('data', (d: string) => (this.buf += d));
    this.sock.on('end', () => (this.ended = true));
    this.sock.on('error', (err) => (this.error = err));
    this.sock.on('close', () => (this.closedAt = Date.now()));
  }

  send(path: string): Promise<Response> {
    this.sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    return waitFor(() => {
      if (this.error) throw this.error;
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return undefined;
      const [statusLine, ...rest] = this.buf.slice(0, end).split('\r\n');
      const headers = Object.fromEntries(rest.map((h) => [h.slice(0, h.indexOf(':')).toLowerCase(), h.slice(h.indexOf(':') + 1).trim()]));
      const len = Number(headers['content-length']);
      if (this.buf.length < end + 4 + len) return undefined;
      const body = this.buf.slice(end + 4, end + 4 + len);
      this.buf = this.buf.slice(end + 4 + len);
      return { status: Number(statusLine!.split(' ')[1]), headers, body };
    }, `response to ${path}`, 10_000);
  }
}

function refused(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve('connected'); });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

function backendLine(hp: Hotproxy, pid: number, prefix: string): LogLine | undefined {
  return hp.logs.find((l) => l.backendPid === pid && typeof l.msg === 'string' && l.msg.startsWith(prefix));
}

/** Every blue printed `exit 0` itself: drained, not SIGKILLed at the drain timeout. */
async function bluesExitedCleanly(hp: Hotproxy, blues: number[]): Promise<void> {
  await waitFor(() => blues.every((p) => !isAlive(p)), 'old generations to exit', 20_000);
  await waitFor(() => blues.every((p) => backendLine(hp, p, 'exit ')), 'exit lines of old generations', 5_000).catch(() => {});
  expect(blues.map((p) => backendLine(hp, p, 'exit ')?.msg ?? 'no exit line (killed)')).toEqual(blues.map(() => 'exit 0'));
  expect(hp.find(DRAIN_DEADLINE)).toBeUndefined();
}

describe('hotproxy/app listen()', () => {
  it('picks $PORT, then the default port, and ignores LISTEN_FDS meant for another pid', async () => {
    const server = http.createServer((_req, res) => res.end('ok'));
    const a = await listen(server, { env: { LISTEN_FDS: '1', LISTEN_PID: '1', PORT: '0' }, signals: [] });
    expect(a.source).toBe('PORT');
    expect((a.address as net.AddressInfo).port).toBeGreaterThan(0);
    expect(await (await fetch(`http://127.0.0.1:${(a.address as net.AddressInfo).port}/`)).text()).toBe('ok');
    expect(await a.drain()).toMatchObject({ forced: false });

    const b = await listen(http.createServer(), { env: {}, port: 0, host: '127.0.0.1', signals: [] });
    expect(b.source).toBe('default');
    expect((b.address as net.AddressInfo).address).toBe('127.0.0.1');
    await b.drain();

    const bad = listen(http.createServer(), { env: { PORT: 'eighty' }, signals: [] });
    await expect(bad).rejects.toThrow(ListenError);
    await expect(bad).rejects.toMatchObject({ code: 'E_LISTEN', message: "PORT is not a port number: 'eighty'" });
  });

  it('run alone with PORT, it serves there, reports the address and exits 0 on SIGTERM', async () => {
    const app = new App({ PORT: '0' });
    const { address, source } = await app.listening();
    expect(source).toBe('PORT');
    const port = (address as net.AddressInfo).port;
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(((await res.json()) as { pid: number }).pid).toBe(app.proc.pid);
    app.proc.kill('SIGTERM');
    expect(await app.exited).toBe(0);
    expect(app.lines).toContain('exit 0');
  });

  it('serves an already-listening socket named only by SERVER_STARTER_PORT', async () => {
    const sock = net.createServer();
    await new Promise<void>((r) => sock.listen({ host: '127.0.0.1', port: 0 }, r));
    const port = (sock.address() as net.AddressInfo).port;
    const fd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
    const app = new App({ SERVER_STARTER_PORT: `127.0.0.1:${port}=3` }, ['ignore', 'pipe', 'pipe', fd]);
    sock.close(); // the child's copy keeps listening; this process must not accept on it
    expect(await app.listening()).toMatchObject({ source: 'SERVER_STARTER_PORT', fd: 3, address: { address: '127.0.0.1', port } });
    expect(((await (await fetch(`http://127.0.0.1:${port}/`)).json()) as { pid: number }).pid).toBe(app.proc.pid);
    app.proc.kill('SIGTERM');
    expect(await app.exited).toBe(0);
  });

  it('on SIGTERM a keep-alive connection gets Connection: close on its next response, no reset, and idle ones close only after the grace period', async () => {
    const grace = 1500;
    const app = new App({ PORT: '0', APP_GRACE_MS: String(grace), APP_DRAIN_TIMEOUT_MS: '10000' });
    const port = ((await app.listening()).address as net.AddressInfo).port;
    const busy = new Conn(port);
    const idle = new Conn(port);
    const slow = new Conn(port);
    for (const c of [busy, idle]) {
      const r = await c.send('/');
      expect(r.headers.connection).toBe('keep-alive');
    }
    const slowRes = slow.send('/slow?ms=800');
    await app.waitLine('slow request started');

    const t0 = Date.now();
    app.proc.kill('SIGTERM');
    await app.waitLine('draining');
    // The listener is closed: nothing new is accepted.
    expect(await refused(port)).toBe('ECONNREFUSED');
    // A request on a connection opened before the signal is answered, and told to close.
    const next = await busy.send('/');
    expect(next.status).toBe(200);
    expect(next.headers.connection).toBe('close');
    await waitFor(() => busy.closedAt, 'the used connection to close');
    expect(busy.ended).toBe(true);
    expect(busy.error).toBeUndefined();
    // The request in flight at the signal finishes, also with Connection: close.
    const s = await slowRes;
    expect(s.status).toBe(200);
    expect(s.headers.connection).toBe('close');
    // The idle connection is closed cleanly (FIN), and not before the grace period.
    await waitFor(() => idle.closedAt, 'the idle connection to close', 5_000);
    expect(idle.closedAt! - t0).toBeGreaterThanOrEqual(grace);
    expect(idle.ended).toBe(true);
    expect(idle.error).toBeUndefined();
    // Then the process exits 0 by itself, well before the drain timeout.
    expect(await app.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('cuts a request still running at the drain timeout and exits 1', async () => {
    const app = new App({ PORT: '0', APP_DRAIN_TIMEOUT_MS: '300' });
    const port = ((await app.listening()).address as net.AddressInfo).port;
    const conn = new Conn(port);
    void conn.send('/slow?ms=5000').catch(() => {});
    await app.waitLine('slow request started');
    const t0 = Date.now();
    app.proc.kill('SIGTERM');
    expect(await app.exited).toBe(1);
    expect(Date.now() - t0).toBeLessThan(3_000);
    await waitFor(() => conn.closedAt, 'the cut connection to close');
  });

  it('with an onDrained hook it calls the hook instead of exiting and leaves nothing holding the process', async () => {
    const app = new App({ PORT: '0', APP_HOOK: '1' });
    await app.listening();
    app.proc.kill('SIGTERM');
    // The process ends on its own once the hook has run: no timer or socket of the helper is left.
    expect(await app.exited).toBe(0);
    const drained = JSON.parse(app.lines.find((l) => l.startsWith('drained '))!.slice('drained '.length));
    expect(drained).toMatchObject({ forced: false, signal: 'SIGTERM' });
  });
});

describe('hotproxy/app under hotproxy', () => {
  it.each([
    ['unix', 'LISTEN_FDS'],
    ['tcp', 'LISTEN_FDS'],
    ['port-env', 'PORT'],
  ])('--backend %s: serves on the socket hotproxy gives it and swaps under load without failures', async (backend, source) => {
    const hp = await startHotproxy(['--backend', backend], APP);
    const [blue] = hp.activePids();
    const listening = JSON.parse(backendLine(hp, blue!, 'listening ')!.msg.slice('listening '.length));
    expect(listening.source).toBe(source);
    if (backend === 'unix') expect(listening.address).toMatch(/^\/.+\.sock$/);
    else expect(listening.address.address).toBe('127.0.0.1');

    await swapsWithoutFailures(hp, 1, 20);
    await bluesExitedCleanly(hp, [blue!]);
    expect(await hp.stop()).toBe(0);
  });

  it('10 HUPs under keep-alive load fail no request, and every old generation drains and exits 0 by itself', async () => {
    const hp = await startHotproxy(['--drain-timeout', '5s'], APP);
    const pids = [...hp.activePids()];
    const load = new Load(hp.url, 20);
    await waitFor(() => load.result.ok > 100, 'load to warm up');
    for (let i = 0; i < 10; i++) {
      const t0 = Date.now();
      const outcome = await hp.reload();
      expect(outcome.msg).toBe(DEPLOYED);
      const pid = (outcome.pids as number[])[0]!;
      pids.push(pid);
      await waitFor(() => load.servedBy(pid) > 20, `traffic on generation ${outcome.gen}`);
      await waitFor(() => Date.now() - t0 >= 1000, 'the next second');
    }
    const result = await load.stop();
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
    expect(new Set(pids).size).toBe(11);
    await bluesExitedCleanly(hp, pids.slice(0, -1));
    // How long blues took from Draining to Drained (SIGTERM to exit included), for the report.
    const t = (msg: string, gen: number): number => hp.find(msg, (l) => l.gen === gen)!.time as number;
    const drains = Array.from({ length: 10 }, (_, i) => t(DRAINED, i + 1) - t(DRAINING, i + 1));
    console.log(`swap storm: ${result.ok} requests, 0 failed; drain ms ${JSON.stringify(drains)}`);
    expect(await hp.stop()).toBe(0);
  });
});
