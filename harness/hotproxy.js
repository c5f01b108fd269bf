// Real hotproxy processes (the built CLI) for the tests and the bench: started on a
// kernel-chosen port, their JSON log followed line by line (which pids are proxy workers and
// backends, how each deploy or upgrade ended), and every process one started accounted for
// once it stops, even when whatever started it failed midway.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Proc, isAlive } from './procs.js';
import { sleep, waitFor } from './wait.js';
// The messages hotproxy logs, as built from src/messages.ts: one spelling for the source, the
// tests and the bench (everything here runs the built CLI anyway).
import * as M from '../dist/messages.js';

/** Called with every message find() or waitForLog() is asked for; the tests refuse unknown ones. */
let checkMessage = () => {};
export function setMessageCheck(check) {
  checkMessage = check;
}

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CLI = `${ROOT}dist/cli.js`;
export const fixture = (name) => `${ROOT}test/fixtures/${name}`;
export const NODE_APP = ['node', fixture('node-app.js')];

export class Hotproxy {
  constructor(proc) {
    this.proc = proc;
    this.logs = [];
    this.port = 0;
    this.tlsPort = 0;
    /** Descendants that outlived stop() and had to be killed: leaks. */
    this.leaked = [];
    this.exited = proc.exited.then(() => this.exitCode);
    proc.onLine((line) => {
      try { this.logs.push(JSON.parse(line)); } catch { this.logs.push({ msg: line, level: 0 }); }
    });
  }

  get pid() { return this.proc.pid; }
  get url() { return `http://127.0.0.1:${this.port}`; }
  get tlsUrl() { return `https://127.0.0.1:${this.tlsPort}`; }
  get stderr() { return this.proc.stderr; }
  get alive() { return this.proc.alive; }
  /** As ChildProcess has it: null while running and after a signal. */
  get exitCode() { return typeof this.proc.exitCode === 'number' ? this.proc.exitCode : null; }

  find(msg, pred = () => true) {
    checkMessage(msg);
    return this.logs.find((l) => l.msg === msg && pred(l));
  }

  waitForLog(msg, pred = () => true, timeoutMs = 20_000) {
    checkMessage(msg);
    return this.#waitForLine((l) => l.msg === msg && pred(l), `log "${msg}"`, timeoutMs);
  }

  // Not waitFor: that retries a throwing check, and an exited hotproxy writes no more lines.
  async #waitForLine(match, what, timeoutMs, from = 0) {
    const deadline = Date.now() + timeoutMs;
    for (let i = from; ; ) {
      for (; i < this.logs.length; i++) if (match(this.logs[i])) return this.logs[i];
      if (this.proc.outputDone) throw new Error(`hotproxy exited (${this.proc.exitCode}) without ${what}: ${this.stderr.trim()}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(10);
    }
  }

  /** Its last `n` log lines (of `minLevel` and above) and stderr: what a failed assertion should show. */
  tail(n = 30, minLevel = 0) {
    const lines = this.logs.filter((l) => (l.level ?? 0) >= minLevel).slice(-n).map((l) => JSON.stringify(l));
    return [...lines, ...(this.stderr.trim() ? [`stderr: ${this.stderr.trim().slice(-2_000)}`] : [])].join('\n');
  }

  /** Every pid hotproxy started: proxy workers and backends. */
  childPids() {
    const pids = new Set();
    for (const l of this.logs) {
      if (typeof l.backendPid === 'number') pids.add(l.backendPid);
      if (typeof l.workerPid === 'number') pids.add(l.workerPid);
    }
    return [...pids];
  }

  /** Active backend pids per the last Deployed line (the first generation's comes before Ready). */
  activePids() {
    return this.logs.filter((l) => l.msg === M.DEPLOYED).pop()?.pids ?? [];
  }

  deployedCount() {
    return this.logs.filter((l) => l.msg === M.DEPLOYED).length;
  }

  /** Pids of the proxy workers serving now. */
  workerPids() {
    const up = this.logs.filter((l) => l.msg === M.UPGRADED).pop();
    if (up) return up.workers;
    return this.logs.filter((l) => l.msg === M.PROXY_WORKER_READY).map((l) => l.workerPid);
  }

  /** The master forwards nothing, but its CPU is part of the proxy's cost too. */
  proxyPids() {
    return [this.pid, ...this.workerPids()];
  }

  signal(sig) {
    this.proc.signal(sig);
  }

  /** Sends HUP and resolves with the outcome of the deploy it caused (Deployed / Deploy failed). */
  reload() {
    return this.#signalForOutcome('SIGHUP', M.DEPLOYED, [M.DEPLOY_FAILED, M.DEPLOY_FAILED_NOTHING_SERVING]);
  }

  /** Sends USR2 and resolves with the outcome (Upgraded / Upgrade failed). */
  upgrade() {
    // UPGRADE_ERROR: the signal handler's line if upgrade() threw instead of failing.
    return this.#signalForOutcome('SIGUSR2', M.UPGRADED, [M.UPGRADE_FAILED, M.UPGRADE_ERROR]);
  }

  #signalForOutcome(sig, success, failures) {
    const from = this.logs.length;
    this.signal(sig);
    return this.#waitForLine((l) => l.msg === success || failures.includes(l.msg), `the outcome of ${sig}`, 40_000, from);
  }

  /**
   * `hotproxy status --json` through the public CLI, i.e. what the master itself says now
   * (not what the log last implied); undefined if it cannot be asked.
   */
  async status(timeoutMs = 5_000) {
    const control = this.find(M.READY)?.control;
    if (!control || !this.alive) return undefined;
    const r = await runCli(['status', '--json', '--control', control], {}, timeoutMs);
    try { return r.status === 0 ? JSON.parse(r.stdout) : undefined; } catch { return undefined; }
  }

  /** SIGTERM, SIGKILL after `graceMs`; resolves with the exit code. */
  async stop(graceMs = 20_000) {
    this.leaked.push(...(await this.proc.stop(graceMs)));
    return this.exitCode;
  }

  /** Processes it started that are still alive. */
  leftovers() {
    return this.childPids().filter(isAlive);
  }
}

const started = new Set();

/**
 * Starts hotproxy and waits for Ready. `args` are CLI options (`--listen 127.0.0.1:0` unless
 * they have one), `command` the backend's command line.
 */
export async function startHotproxy(args, command = NODE_APP, opts = {}) {
  const cli = opts.cli ?? CLI;
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: build first (npm run build)`);
  const hasListen = opts.wrap !== undefined || opts.noListen || args.some((a) => a === '--listen' || a === '-l');
  const workers = opts.proxyWorkers === undefined ? [] : ['--proxy-workers', String(opts.proxyWorkers)];
  const argv = [cli, ...(hasListen ? [] : ['--listen', '127.0.0.1:0']), '--log-format', 'json', ...workers, ...args, '--', ...command];
  const [file, ...pre] = opts.wrap ?? [];
  const proc = new Proc(file ?? process.execPath, file ? [...pre, process.execPath, ...argv] : argv, {
    name: 'hotproxy',
    cwd: ROOT,
    env: opts.env,
    // Its own process group, as a shell job would be, so that the group can be signalled.
    detached: true,
    stderrMax: Infinity,
  });
  const hp = new Hotproxy(proc);
  started.add(hp);
  if (opts.noWait) return hp;
  const ready = await hp.waitForLog(M.READY);
  const portOf = (a) => (a === undefined ? 0 : Number(a.slice(a.lastIndexOf(':') + 1)));
  hp.port = portOf(ready.listen[0]);
  hp.tlsPort = portOf(ready.listenTls?.[0]);
  if (opts.proxyWorkers !== undefined) {
    // Workers normally report before Ready; wait anyway so CPU sampling never misses one.
    await waitFor(() => hp.workerPids().length >= opts.proxyWorkers, 'proxy workers to report ready', 10_000);
  }
  return hp;
}

/**
 * Stops every hotproxy started since the last call that still runs, waits for what each
 * started to exit, kills whatever does not, and resolves with the pids it had to kill.
 */
export async function reapAll() {
  const survivors = [];
  for (const hp of started) {
    if (hp.alive) await hp.stop(20_000);
    await waitFor(() => hp.leftovers().length === 0, 'children to exit', 10_000).catch(() => {});
    const left = hp.leftovers();
    for (const pid of left) {
      // Its whole process group, so that nothing it started answers the next requests.
      try { process.kill(-pid, 'SIGKILL'); } catch { /* not a group leader */ }
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    survivors.push(...hp.leaked, ...left);
  }
  started.clear();
  return survivors;
}

/** Waits until no process hotproxy started is alive (it was stopped, not killed). */
export async function expectNothingLeft(hp) {
  if (hp.leaked.length) throw new Error(`processes of ${hp.pid} outlived it and were killed: ${hp.leaked.join(', ')}`);
  await waitFor(() => hp.leftovers().length === 0, `children of ${hp.pid} to exit`, 10_000);
}

/** Runs the CLI as a deploy script would (`hotproxy reload …`), without blocking the event loop. */
export async function runCli(args, env = {}, timeoutMs) {
  const p = new Proc(process.execPath, [CLI, ...args], { name: 'hotproxy cli', cwd: ROOT, env, keepStdout: true, stderrMax: Infinity });
  const guard = timeoutMs === undefined ? undefined : setTimeout(() => p.stop(1_000), timeoutMs);
  await p.closed;
  clearTimeout(guard);
  return { status: typeof p.exitCode === 'number' ? p.exitCode : null, stdout: p.stdout, stderr: p.stderr };
}
