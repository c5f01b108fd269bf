// Starts real hotproxy processes (the built CLI) on port 0 and makes sure every process a test
// started — master, proxy workers, backends — is gone when the test ends, even on failure.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import * as MESSAGES from '../../src/messages.js';
import { isAlive, waitFor } from './wait.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = `${ROOT}dist/cli.js`;
export const fixture = (name: string): string => `${ROOT}test/fixtures/${name}`;
export const NODE_APP = ['node', fixture('node-app.js')];

export interface LogLine {
  msg: string;
  level: number;
  [k: string]: unknown;
}

export class Hotproxy {
  readonly logs: LogLine[] = [];
  stderr = '';
  exitCode: number | null = null;
  readonly exited: Promise<number | null>;
  port = 0;

  constructor(readonly proc: ChildProcess) {
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try { this.logs.push(JSON.parse(line) as LogLine); } catch { this.logs.push({ msg: line, level: 0 }); }
      }
    });
    proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => proc.once('exit', (code) => { this.exitCode = code; resolve(code); }));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /**
   * The first line whose message is exactly `msg`: one of src/messages.ts, or a line a test
   * fixture prints. Any other `msg` throws, so a test cannot wait for or rule out a message
   * that is never logged.
   */
  find(msg: string, pred: (l: LogLine) => boolean = () => true): LogLine | undefined {
    expectKnownMessage(msg);
    return this.logs.find((l) => l.msg === msg && pred(l));
  }

  waitForLog(msg: string, pred: (l: LogLine) => boolean = () => true, timeoutMs = 20_000): Promise<LogLine> {
    expectKnownMessage(msg);
    return waitFor(() => {
      if (this.exitCode !== null && !this.find(msg, pred)) throw new Error(`hotproxy exited (${this.exitCode}): ${this.stderr}`);
      return this.find(msg, pred);
    }, `log "${msg}"`, timeoutMs);
  }

  /** Every pid hotproxy started: proxy workers and backends. */
  childPids(): number[] {
    const pids = new Set<number>();
    for (const l of this.logs) {
      if (typeof l.backendPid === 'number') pids.add(l.backendPid);
      if (typeof l.workerPid === 'number') pids.add(l.workerPid);
    }
    return [...pids];
  }

  /** Active backend pids per the last Deployed line. */
  activePids(): number[] {
    const d = this.logs.filter((l) => l.msg === MESSAGES.DEPLOYED).pop();
    return (d?.pids as number[]) ?? [];
  }

  deployedCount(): number {
    return this.logs.filter((l) => l.msg === MESSAGES.DEPLOYED).length;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.exitCode !== null) return;
    try { process.kill(this.pid, sig); } catch { /* exited a moment ago */ }
  }

  /** Sends USR2 and resolves with the outcome (Upgraded / Upgrade failed). */
  upgrade(): Promise<LogLine> {
    return this.signalForOutcome('SIGUSR2', MESSAGES.UPGRADED, [MESSAGES.UPGRADE_FAILED, MESSAGES.UPGRADE_ERROR]);
  }

  /** Pids of the proxy workers serving now. */
  workerPids(): number[] {
    const up = this.logs.filter((l) => l.msg === MESSAGES.UPGRADED).pop();
    if (up) return up.workers as number[];
    return this.logs.filter((l) => l.msg === MESSAGES.PROXY_WORKER_READY).map((l) => l.workerPid as number);
  }

  /** Sends HUP and resolves with the outcome of the deploy it caused (Deployed / Deploy failed). */
  reload(): Promise<LogLine> {
    return this.signalForOutcome('SIGHUP', MESSAGES.DEPLOYED, [MESSAGES.DEPLOY_FAILED, MESSAGES.DEPLOY_FAILED_NOTHING_SERVING]);
  }

  private signalForOutcome(sig: NodeJS.Signals, success: string, failures: string[]): Promise<LogLine> {
    const before = this.logs.length;
    this.signal(sig);
    return waitFor(
      () => this.logs.slice(before).find((l) => l.msg === success || failures.includes(l.msg)),
      `outcome of ${sig}`, 40_000,
    );
  }

  async stop(): Promise<number | null> {
    this.signal('SIGTERM');
    return this.exited;
  }
}

/** Throws unless `msg` is a message hotproxy logs (src/messages.ts) or a line a test fixture prints. */
function expectKnownMessage(msg: string): void {
  knownMessages ??= messagePatterns();
  if (!knownMessages.some((m) => (typeof m === 'string' ? m === msg : m.test(msg)))) {
    throw new Error(`no such log message: ${JSON.stringify(msg)} is neither in src/messages.ts nor printed by a test fixture`);
  }
}

let knownMessages: (string | RegExp)[] | undefined;

function messagePatterns(): (string | RegExp)[] {
  const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // A message with a variable part, called with a marker for each part: its text around them.
  const HOLE = '\u0000';
  const ours = Object.values(MESSAGES).map((m) => (typeof m === 'string' ? m
    : new RegExp(`^${(m as (...a: string[]) => string)(...Array.from({ length: m.length }, () => HOLE)).split(HOLE).map(escape).join('.+')}$`)));
  // What the fixtures print: every quoted string in them with no ${…} part.
  const dir = `${ROOT}test/fixtures`;
  const fixtures = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => statSync(`${dir}/${f}`).isFile())
    .flatMap((f) => [...readFileSync(`${dir}/${f}`, 'utf8').matchAll(/(['"`])([^'"`\n$]+)\1/g)].map((x) => x[2]!));
  return [...ours, ...fixtures];
}

const running = new Set<Hotproxy>();

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  /** Another copy of the built CLI (to change its code on disk before an upgrade). */
  cli?: string;
  /** Don't wait for Ready (for start-up failure tests). */
  noWait?: boolean;
  /** A command that execs hotproxy (systemd-socket-activate …); no --listen is added. */
  wrap?: string[];
  /** Add no --listen (it comes from a config file or the environment). */
  noListen?: boolean;
}

export async function startHotproxy(args: string[], command: string[] = NODE_APP, opts: StartOptions = {}): Promise<Hotproxy> {
  const hasListen = opts.wrap !== undefined || opts.noListen || args.some((a) => a === '--listen' || a === '-l');
  const argv = [opts.cli ?? CLI, ...(hasListen ? [] : ['--listen', '127.0.0.1:0']), '--log-format', 'json', ...args, '--', ...command];
  const [file, ...pre] = opts.wrap ?? [];
  const proc = spawn(file ?? process.execPath, file ? [...pre, process.execPath, ...argv] : argv, {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, as a shell job would be, so tests can signal the group.
    detached: true,
  });
  const hp = new Hotproxy(proc);
  running.add(hp);
  if (opts.noWait) return hp;
  const ready = await hp.waitForLog(MESSAGES.READY);
  const listen = (ready.listen as string[])[0]!;
  hp.port = Number(listen.slice(listen.lastIndexOf(':') + 1));
  return hp;
}

/** Runs the CLI as a deploy script would (`hotproxy reload …`), without blocking the event loop. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Kills whatever a test left running and fails the test if anything survives. */
export async function cleanup(): Promise<void> {
  const survivors: number[] = [];
  for (const hp of running) {
    if (hp.exitCode === null) {
      // A test that failed midway: stop it the way a user would, and kill it if that hangs.
      hp.signal('SIGTERM');
      const timer = setTimeout(() => hp.signal('SIGKILL'), 20_000);
      await hp.exited;
      clearTimeout(timer);
    }
    await waitFor(() => hp.childPids().every((p) => !isAlive(p)), 'children to exit', 10_000).catch(() => {});
    for (const pid of hp.childPids()) {
      if (!isAlive(pid)) continue;
      // A leak: note it, then kill the process group so the next test starts clean.
      survivors.push(pid);
      try { process.kill(-pid, 'SIGKILL'); } catch { /* not a group leader */ }
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
  running.clear();
  if (survivors.length) throw new Error(`processes outlived their test: ${survivors.join(', ')}`);
}

/** Waits until no process hotproxy started is alive (it was stopped, not killed). */
export async function expectNothingLeft(hp: Hotproxy): Promise<void> {
  await waitFor(() => hp.childPids().every((p) => !isAlive(p)), `children of ${hp.pid} to exit`, 10_000);
}

afterEach(cleanup);
