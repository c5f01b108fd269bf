// Starting, stopping and measuring the processes the tests and the bench run. Every process
// started here is tracked so that a failed or interrupted run still stops all of them (and
// whatever they started in turn): a leftover proxy or backend would skew the next run's
// numbers, or answer the next test's requests.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { sleep } from './wait.js';

const tracked = new Set();
// Set once the final cleanup began: a benchmark step still unwinding must not start more.
let closing = false;

/** A child process whose stdout is split into lines and whose stderr is kept for errors. */
export class Proc {
  constructor(cmd, args, opts = {}) {
    if (closing) throw new Error('bench is stopping');
    this.name = opts.name ?? path.basename(cmd);
    this.child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: opts.detached ?? false,
    });
    this.pid = this.child.pid;
    this.stdout = '';
    this.stderr = '';
    this.exitCode = undefined;
    // Output can still be in the pipe when 'exit' fires: only after 'close' is every line read.
    this.outputDone = false;
    this.lineHandlers = [];
    // Only the tail says why a chatty process died; keep memory bounded unless asked for all.
    const stderrMax = opts.stderrMax ?? 4000;
    let buf = '';
    this.child.stdout.setEncoding('utf8');
    this.child.stderr.setEncoding('utf8');
    this.child.stdout.on('data', (d) => {
      if (opts.keepStdout) this.stdout += d;
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        for (const h of this.lineHandlers) h(line);
      }
    });
    this.child.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-stderrMax); });
    let closed;
    this.closed = new Promise((resolve) => { closed = () => { this.outputDone = true; resolve(); }; });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, sig) => { this.exitCode = code ?? sig; tracked.delete(this); resolve(this.exitCode); });
      this.child.once('close', closed);
      // A spawn that failed emits no 'close'.
      this.child.once('error', (err) => { this.exitCode = err.message; tracked.delete(this); closed(); resolve(this.exitCode); });
    });
    if (this.pid) tracked.add(this);
  }

  get alive() { return this.exitCode === undefined; }

  onLine(fn) { this.lineHandlers.push(fn); }

  signal(sig) {
    if (!this.alive) return;
    try { process.kill(this.pid, sig); } catch { /* exited a moment ago */ }
  }

  /**
   * SIGTERM, then SIGKILL after `graceMs`. Descendants are snapshotted first (with their start
   * times, so a recycled pid is never killed) and killed too if they outlive the grace period:
   * a supervisor killed with SIGKILL cannot stop its own children. Resolves with the pids that
   * had to be killed that way, which for a supervisor that exited by itself means a leak.
   */
  async stop(graceMs = 10_000) {
    // Once it is gone its pid may belong to someone else, whose children are not ours to kill.
    if (!this.alive) return [];
    const family = descendants(this.pid);
    this.signal('SIGTERM');
    const deadline = Date.now() + graceMs;
    let timer;
    const late = new Promise((resolve) => { timer = setTimeout(() => resolve(true), graceMs); });
    // The timer is cleared on exit: a pending one would keep the bench alive after its work.
    if (await Promise.race([this.exited.then(() => false), late])) {
      this.signal('SIGKILL');
      await this.exited;
    }
    clearTimeout(timer);
    // Children still shutting down right after their parent are not leaks yet.
    const until = Math.max(deadline, Date.now() + 5_000);
    while (family.some(stillRunning) && Date.now() < until) await sleep(50);
    const left = family.filter(stillRunning);
    for (const p of left) { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }
    return left.map((p) => p.pid);
  }
}

/** Stops every process still running (used by the final cleanup and signal handlers). */
export async function stopAll(graceMs = 10_000) {
  closing = true;
  await Promise.all([...tracked].map((p) => p.stop(graceMs)));
}

/** Last resort when the process is exiting and cannot await: SIGKILL everything known. */
export function killAllSync() {
  for (const p of tracked) {
    for (const d of descendants(p.pid)) { try { process.kill(d.pid, 'SIGKILL'); } catch { /* gone */ } }
    try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
  }
}

// --- /proc -----------------------------------------------------------------------------------

/** Fields after "pid (comm)": comm may contain spaces and parentheses, so split after the last ')'. */
function statFields(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch { return undefined; }
}
// Indices into statFields(): field N of proc(5) is at N - 3.
const STATE = 0, PPID = 1, UTIME = 11, STIME = 12, STARTTIME = 19;

function stillRunning(p) {
  const f = statFields(p.pid);
  return f !== undefined && f[STARTTIME] === p.start && f[STATE] !== 'Z';
}

/** True while a process exists and is not a zombie. */
export function isAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const f = statFields(pid);
  return f !== undefined && f[STATE] !== 'Z';
}

/** Every live descendant of `pid` as { pid, start }. */
export function descendants(pid) {
  const children = new Map();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const f = statFields(e);
    if (!f) continue;
    const ppid = Number(f[PPID]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push({ pid: Number(e), start: f[STARTTIME] });
  }
  const out = [];
  const walk = (p) => { for (const c of children.get(p) ?? []) { out.push(c); walk(c.pid); } };
  walk(pid);
  return out;
}

let clkTck;
function ticksPerSecond() {
  if (clkTck === undefined) {
    try { clkTck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100; } catch { clkTck = 100; }
  }
  return clkTck;
}

/** utime and stime of the given pids in microseconds (a process that is gone counts 0). */
export function cpuTimes(pids) {
  let user = 0, system = 0;
  for (const pid of pids) {
    const f = statFields(pid);
    if (f) { user += Number(f[UTIME]); system += Number(f[STIME]); }
  }
  const us = 1e6 / ticksPerSecond();
  return { user: user * us, system: system * us };
}

/** utime+stime of the given pids in microseconds. */
export function cpuMicros(pids) {
  const { user, system } = cpuTimes(pids);
  return user + system;
}

/** Resident memory of a process in KiB (NaN if the kernel does not say). */
export function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

// --- ports and binaries ----------------------------------------------------------------------

/** A port the kernel just handed out (closed again; the tiny reuse race is acceptable here). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port, timeoutMs = 10_000, proc) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => { c.destroy(); resolve(true); });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (proc && !proc.alive) throw new Error(`${proc.name} exited (${proc.exitCode}): ${lastWords(proc.stderr)}`);
    if (Date.now() > deadline) throw new Error(`nothing listening on port ${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** The most telling stderr line of a dead process: an alert/error if any, else the last line. */
export function lastWords(stderr) {
  const lines = stderr.trim().split('\n').filter(Boolean);
  return (lines.find((l) => /alert|emerg|error|fatal/i.test(l)) ?? lines.pop() ?? '').trim();
}

/** Path of an executable on PATH (plus the sbin dirs, where haproxy/nginx live), or undefined. */
export function which(name) {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, name);
    try { fs.accessSync(p, fs.constants.X_OK); if (fs.statSync(p).isFile()) return p; } catch { /* next */ }
  }
  return undefined;
}
