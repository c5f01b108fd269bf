// The fault matrix: what a user sees when the app, the machine or another process misbehaves.
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Backoff } from '../src/backoff.js';
import { CLI, expectNothingLeft, fixture, NODE_APP, ROOT, runCli, startHotproxy, type Hotproxy } from './helpers/hotproxy.js';
import { Load } from './helpers/load.js';
import { cpuMicros } from './helpers/procs.js';
import { isAlive, waitFor } from './helpers/wait.js';
import { BACKEND_EXITED, BACKEND_RESTART_FAILED, BACKEND_SIGKILLED, BACKEND_STARTED, DEPLOYED, DEPLOY_FAILED, DRAINED, DRAINING, LISTENING, READY } from '../src/messages.js';

const faulty = ['node', fixture('faulty-app.js')];
const RUNUSER = '/usr/sbin/runuser';
const canRunAsNobody = process.getuid?.() === 0 && spawnSync(RUNUSER, ['-u', 'nobody', '--', 'true']).status === 0;

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'hp-faults-test-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('a green that exits during the deploy', () => {
  it('one that exits 2 s after it started, before it was healthy, fails the reload and blue serves on', async () => {
    const hp = await startHotproxy(['--runtime-dir', dir], faulty, { env: { FAULT_START_DELAY_MS: '60000', FAULT_EXIT_AFTER_MS: '2000' } });
    const [bluePid] = hp.activePids();
    const load = new Load(hp.url, 10);
    await waitFor(() => load.result.ok > 20, 'load to start');
    const t0 = Date.now();
    const r = await runCli(['reload', '--runtime-dir', dir]);
    const ms = Date.now() - t0;
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^hotproxy: reload failed: backend \d+ exited with code 6 before it was healthy\n$/);
    // It fails when green exits, not at --deploy-timeout (30 s).
    expect(ms).toBeGreaterThanOrEqual(1900);
    expect(ms).toBeLessThan(6000);
    expect(hp.find(DEPLOY_FAILED)?.level).toBe(50);
    await expectBlueServesOn(hp, load, bluePid!);
  });

  it('one that exits after it was healthy, while its sibling is still starting, fails the reload and blue serves on', async () => {
    // Instance 0 of green is healthy at once and exits after 1.5 s; instance 1 gets healthy at ~3 s.
    const hp = await startHotproxy(['--runtime-dir', dir, '--workers', '2'], faulty, {
      env: { FAULT_EXIT_AFTER_MS_0: '1500', FAULT_START_DELAY_MS_1: '3000' },
    });
    const bluePids = hp.activePids();
    const load = new Load(hp.url, 10);
    await waitFor(() => load.result.ok > 20, 'load to start');
    const r = await runCli(['reload', '--runtime-dir', dir]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^hotproxy: reload failed: backend \d+ exited with code 6 after it was healthy\n$/);
    expect(hp.find(DEPLOYED, (l) => l.gen === 2)).toBeUndefined();
    const okBefore = load.result.ok;
    await waitFor(() => load.result.ok > okBefore + 50, 'blue to keep serving');
    const result = await load.stop();
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
    expect([...result.byGen.keys()]).toEqual([1]);
    expect(new Set(result.byPid.keys())).toEqual(new Set(bluePids));
    await hp.stop();
    await expectNothingLeft(hp);
  });
});

describe('a green whose health flaps', () => {
  it('is switched to only after --health-rise consecutive passes, and gets no request before', async () => {
    const hp = await startHotproxy(['--health-path', '/health'], faulty, { env: { FAULT_HEALTH_SEQ: 'ok,fail,ok,fail,ok,ok' } });
    const load = new Load(hp.url, 10);
    await waitFor(() => load.result.ok > 20, 'load to start');
    const outcome = await hp.reload();
    expect(outcome.msg).toBe(DEPLOYED);
    const [greenPid] = outcome.pids as number[];
    await waitFor(() => load.servedBy(greenPid!) > 20, 'traffic on green');
    const checks = backendLines(hp, greenPid!).filter((m) => m.startsWith('health check'));
    expect(checks).toEqual(['health check 1: ok', 'health check 2: fail', 'health check 3: ok', 'health check 4: fail', 'health check 5: ok', 'health check 6: ok']);
    // The first client request reached green only after its second pass in a row.
    expect(backendLines(hp, greenPid!)).toContain('first request after 6 health checks');
    const result = await load.stop();
    expect(result.failed).toBe(0);
    await hp.stop();
  });

  it('that never passes twice in a row fails at --deploy-timeout and never gets a request', async () => {
    const hp = await startHotproxy(['--health-path', '/health', '--deploy-timeout', '1500ms'], faulty, { env: { FAULT_HEALTH_SEQ: 'loop:ok,fail' } });
    const [bluePid] = hp.activePids();
    const load = new Load(hp.url, 10);
    await waitFor(() => load.result.ok > 20, 'load to start');
    const outcome = await hp.reload();
    expect(outcome.msg).toBe(DEPLOY_FAILED);
    expect(String(outcome.err)).toMatch(/not healthy within 1500 ms: GET \/health answered 503/);
    const greenPid = hp.find(BACKEND_STARTED, (l) => l.gen === 2)!.backendPid as number;
    expect(backendLines(hp, greenPid).filter((m) => m.startsWith('health check')).length).toBeGreaterThanOrEqual(5);
    expect(backendLines(hp, greenPid).filter((m) => m.startsWith('first request'))).toEqual([]);
    await expectBlueServesOn(hp, load, bluePid!);
  });
});

describe('a blue killed by someone while it drains', () => {
  it('fails only its own in-flight requests that cannot be re-sent; every other request and green are unaffected', async () => {
    const hp = await startHotproxy([]);
    const [bluePid] = hp.activePids();
    // In flight on blue: requests with a body (never re-sent) and plain GETs (idempotent).
    const posts = [0, 1].map(() => request('POST', `${hp.url}/slow?ms=3000`, 'x'));
    const gets = [0, 1].map(() => request('GET', `${hp.url}/slow?ms=3000`));
    await waitFor(() => hp.logs.filter((l) => l.msg === 'slow request started').length === 4, 'slow requests on blue');
    const load = new Load(hp.url, 10);
    await waitFor(() => load.result.ok > 20, 'load to start');
    const outcome = await hp.reload();
    const [greenPid] = outcome.pids as number[];
    await hp.waitForLog(DRAINING, (l) => l.gen === 1);
    await waitFor(() => load.servedBy(greenPid!) > 20, 'traffic on green');
    const t0 = Date.now();
    process.kill(bluePid!, 'SIGKILL');
    // The POSTs fail at once (502: no response had begun), not at their 3 s.
    const failed = await Promise.all(posts);
    expect(failed.map((a) => a.status)).toEqual([502, 502]);
    expect(Date.now() - t0).toBeLessThan(1000);
    // The drain ends then, without waiting for --drain-timeout (30 s).
    await hp.waitForLog(DRAINED, (l) => l.gen === 1, 5_000);
    // The GETs had no response byte yet either: they are sent again, to green.
    const resent = await Promise.all(gets);
    expect(resent.map((a) => [a.status, JSON.parse(a.body).pid])).toEqual([[200, greenPid], [200, greenPid]]);
    const okBefore = load.result.ok;
    await waitFor(() => load.result.ok > okBefore + 50, 'green to keep serving');
    const result = await load.stop();
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
    expect(isAlive(greenPid!)).toBe(true);
    expect(hp.find(BACKEND_EXITED('was killed by SIGKILL'))).toBeUndefined(); // a draining blue is not restarted
    await hp.stop();
  });
});

describe('a crash loop of the active generation', () => {
  it('backs off with growing, capped delays, one log line per attempt, an idle master, and 503s, never a hang', async () => {
    // Generation 1 starts fine; every restart of it exits at once.
    const hp = await startHotproxy(['--queue-timeout', '300ms'], NODE_APP, { env: { APP_FAIL_MODE: 'exit-on-restart' } });
    const [pid] = hp.activePids();
    process.kill(pid!, 'SIGKILL');
    await waitFor(() => failedRestarts(hp).length >= 3, 'three failed restarts');
    // The master's own CPU time over a window of the loop (children are not counted).
    const cpu0 = cpuMs(hp.pid);
    const t0 = Date.now();
    for (let i = 0; i < 3; i++) {
      const s = Date.now();
      const res = await fetch(hp.url);
      expect(res.status).toBe(503);
      expect(Date.now() - s).toBeGreaterThanOrEqual(250);
      expect(Date.now() - s).toBeLessThan(2000);
    }
    await waitFor(() => failedRestarts(hp).length >= 5, 'five failed restarts');
    const cpuShare = (cpuMs(hp.pid) - cpu0) / (Date.now() - t0);
    expect(cpuShare).toBeLessThan(0.1);
    const first = hp.find(BACKEND_EXITED('was killed by SIGKILL'))!;
    const delays = [first.restartInMs, ...failedRestarts(hp).map((l) => l.restartInMs)];
    expect(delays.slice(0, 6)).toEqual([100, 200, 400, 800, 1600, 3200]);
    for (const l of [first, ...failedRestarts(hp)]) expect(l.maxDelayMs).toBe(10_000);
    // One error line per attempt, each naming its attempt, and one started backend per attempt.
    const attempts = failedRestarts(hp).map((l) => l.attempt);
    expect(attempts).toEqual(attempts.map((_, i) => i + 1));
    expect(String(failedRestarts(hp)[0]!.err)).toMatch(/exited with code 5 before it was healthy/);
    // Started backends: the first one, one per failed attempt, perhaps one attempt under way.
    const started = hp.logs.filter((l) => l.msg === BACKEND_STARTED).length - 1 - failedRestarts(hp).length;
    expect([0, 1]).toContain(started);
    await hp.stop();
    console.log(`crash loop: master CPU ${(cpuShare * 100).toFixed(1)}% of one core; delays ${delays.join(', ')} ms`);
  });

  it('the restart delay doubles from 100 ms and stays at 10 s', () => {
    const b = new Backoff();
    expect(Array.from({ length: 10 }, () => b.take())).toEqual([100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]);
  });
});

describe('a backend that ignores SIGTERM', () => {
  it('is SIGKILLed at --drain-timeout after SIGTERM, with a log line that says so', async () => {
    const hp = await startHotproxy(['--drain-timeout', '1s'], NODE_APP, { env: { APP_MODE: 'ignore-sigterm' } });
    const [bluePid] = hp.activePids();
    const outcome = await hp.reload();
    expect(outcome.msg).toBe(DEPLOYED);
    const killed = await hp.waitForLog(BACKEND_SIGKILLED(1000), (l) => l.backendPid === bluePid);
    expect(killed.level).toBe(40);
    await waitFor(() => !isAlive(bluePid!), 'blue to be gone', 1000);
    // SIGTERM went out when the (empty) drain ended; SIGKILL a drain timeout later.
    const draining = hp.find(DRAINING, (l) => l.gen === 1)!;
    const after = (killed.time as number) - (draining.time as number);
    expect(after).toBeGreaterThanOrEqual(950);
    expect(after).toBeLessThan(2500);
    // hotproxy stop ends the same way for green.
    expect(await hp.stop()).toBe(0);
    expect(hp.find(BACKEND_SIGKILLED(1000), (l) => l.gen === 2)).toBeDefined();
    await expectNothingLeft(hp);
  });
});

describe('a backend that forks children of its own', () => {
  it('has them stopped with it on drain and on stop, even one that ignores SIGTERM', async () => {
    // A shell's background job (dies on SIGTERM) and the app's own child (ignores SIGTERM).
    const cmd = ['sh', '-c', 'sleep 1000 & echo "grandchild $!"; exec node "$0"', fixture('faulty-app.js')];
    const hp = await startHotproxy([], cmd, { env: { FAULT_GRANDCHILD: '1' } });
    const found: number[] = [];
    try {
      const grandchildren = async (gen: number): Promise<number[]> => {
        const pids = await waitFor(() => {
          const p = hp.logs.filter((l) => l.gen === gen && l.stream === 'stdout' && l.msg.startsWith('grandchild ')).map((l) => Number(l.msg.split(' ')[1]));
          return p.length === 2 ? p : undefined;
        }, `grandchildren of generation ${gen}`);
        found.push(...pids);
        return pids;
      };
      const blue = await grandchildren(1);
      expect(blue.every(isAlive)).toBe(true);
      await hp.reload();
      const green = await grandchildren(2);
      await hp.waitForLog(DRAINED, (l) => l.gen === 1);
      expect(blue.filter(isAlive)).toEqual([]);
      expect(green.every(isAlive)).toBe(true);
      expect(await hp.stop()).toBe(0);
      await waitFor(() => green.every((p) => !isAlive(p)), 'green grandchildren to be gone', 2000);
      await expectNothingLeft(hp);
    } finally {
      for (const p of found) try { process.kill(p, 'SIGKILL'); } catch { /* gone, as it should be */ }
    }
  });
});

describe('a runtime directory that cannot be used', () => {
  /** Starts hotproxy with --runtime-dir `where` and expects one line on stderr, exit 1, nothing started. */
  function expectRefused(where: string, pattern: RegExp, runAs?: string, lateFailure = false): { stdout: string } {
    const argv = [CLI, '--listen', '127.0.0.1:0', '--runtime-dir', where, '--log-format', 'json', '--', ...NODE_APP];
    const r = runAs
      ? spawnSync(RUNUSER, ['-u', runAs, '--', process.execPath, ...argv], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 })
      : spawnSync(process.execPath, argv, { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^hotproxy: [^\n]+\n$/);
    expect(r.stderr).toMatch(pattern);
    // Refused before anything started: no proxy worker, no backend.
    if (!lateFailure) for (const msg of [LISTENING, BACKEND_STARTED]) expect(r.stdout).not.toContain(msg);
    return r;
  }

  it('one that does not exist', () => {
    expectRefused(join(dir, 'missing'), /cannot create a runtime directory in .*\/missing: ENOENT: no such file or directory/);
  });

  it('one another user owns', ({ skip }) => {
    if (!canRunAsNobody) skip('needs root and runuser');
    expectRefused(dir, /cannot create a runtime directory in .*: EACCES: permission denied/, 'nobody');
  });

  it('one on a read-only file system', ({ skip }) => {
    if (!mount(['--bind', dir, dir]) || !mount(['-o', 'remount,ro,bind', dir])) skip('cannot mount here (needs root)');
    try {
      expectRefused(dir, /cannot create a runtime directory in .*: EROFS: read-only file system/);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      umount(dir);
    }
  });

  // A full disk, for sockets, is one without free inodes: a tmpfs with (almost) none. Its
  // root directory takes one; the runtime directory, the control socket and a backend's
  // socket one each. (Sockets need no data blocks, so a tmpfs full of data does not stop hotproxy.)
  for (const [what, nrInodes, filler, pattern] of [
    ['one on a full disk', 2, true, /cannot create a runtime directory in .*: ENOSPC: no space left on device/],
    ['one on a disk with room for the directory only', 2, false, /runtime directory .*\/hotproxy-\d+-\w+ is not writable: ENOSPC: no space left on device/],
    ['one on a disk that is full by the time the first backend socket is made', 3, false, /the first generation did not start: listen ENOSPC: no space left on device .*\/gen1-0-0\.sock$/m],
  ] as const) {
    it(what, ({ skip }) => {
      if (!mount(['-t', 'tmpfs', '-o', `size=64k,nr_inodes=${nrInodes},mode=0755`, 'tmpfs', dir])) skip('cannot mount here (needs root)');
      try {
        if (filler) spawnSync('touch', [join(dir, 'filler')]);
        const before = readdirSync(dir);
        const r = expectRefused(dir, pattern, undefined, nrInodes === 3);
        expect(readdirSync(dir)).toEqual(before); // no stray directory or file left behind
        // Whatever had started was stopped again.
        const pids = [...r.stdout.matchAll(/"(?:workerPid|backendPid)":(\d+)/g)].map((m) => Number(m[1]));
        expect(pids.filter(isAlive)).toEqual([]);
      } finally {
        umount(dir);
      }
    });
  }
});

describe('private backend sockets', () => {
  it('cannot be connected to by another local user', async ({ skip }) => {
    if (!canRunAsNobody) skip('needs root and runuser');
    const hp = await startHotproxy(['--runtime-dir', dir]);
    const runtimeDir = dirname(hp.find(READY)!.control as string);
    const sock = join(runtimeDir, readdirSync(runtimeDir).find((f) => f.startsWith('gen1-') && f.endsWith('.sock'))!);
    const probe = `require('net').connect(${JSON.stringify(sock)}).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(3); })`;
    // The owner can (it is the live socket), another user cannot even reach it.
    expect(spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' }).stdout.trim()).toBe('connected');
    expect(spawnSync(RUNUSER, ['-u', 'nobody', '--', process.execPath, '-e', probe], { encoding: 'utf8' }).stdout.trim()).toBe('EACCES');
    await hp.stop();
  });

  it('--backend tcp binds the backend to loopback only', async () => {
    const hp = await startHotproxy(['--backend', 'tcp']);
    const body = (await (await fetch(`${hp.url}/env`)).json()) as { env: { SERVER_STARTER_PORT: string } };
    expect(body.env.SERVER_STARTER_PORT).toMatch(/^127\.0\.0\.1:\d+=3$/);
    await hp.stop();
  });
});

/** After a failed deploy: blue keeps serving, no request failed, green is gone. */
async function expectBlueServesOn(hp: Hotproxy, load: Load, bluePid: number): Promise<void> {
  const okBefore = load.result.ok;
  await waitFor(() => load.result.ok > okBefore + 50, 'blue to keep serving');
  const result = await load.stop();
  expect(result.errors).toEqual([]);
  expect(result.failed).toBe(0);
  expect([...result.byPid.keys()]).toEqual([bluePid]);
  const greenPid = hp.find(BACKEND_STARTED, (l) => l.gen === 2)?.backendPid;
  expect(greenPid).toEqual(expect.any(Number));
  await waitFor(() => !isAlive(greenPid as number), 'failed green to be stopped');
  expect(await hp.stop()).toBe(0);
  await expectNothingLeft(hp);
}

/** What a backend printed, in order. */
function backendLines(hp: Hotproxy, pid: number): string[] {
  return hp.logs.filter((l) => l.backendPid === pid && l.stream === 'stdout').map((l) => l.msg);
}

function failedRestarts(hp: Hotproxy): Array<Record<string, unknown>> {
  return hp.logs.filter((l) => l.msg === BACKEND_RESTART_FAILED);
}

/** utime + stime of one process, in ms. */
function cpuMs(pid: number): number {
  return cpuMicros([pid]) / 1000;
}

function mount(args: string[]): boolean {
  return process.getuid?.() === 0 && spawnSync('mount', args).status === 0;
}

function umount(path: string): void {
  spawnSync('umount', [path]);
}

function request(method: string, url: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d)).on('end', () => resolve({ status: res.statusCode!, body: text }));
    }).on('error', reject);
    req.end(body);
  });
}
