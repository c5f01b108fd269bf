// Starting, stopping and measuring the processes a benchmark run uses. Every process started
// here is tracked so that a failed or interrupted run still stops all of them (and whatever
// they started in turn): a leftover proxy or backend would skew the next run's numbers.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const tracked = new Set();
// Set once the final cleanup began: a benchmark step still unwinding must not start more.
let closing = false;

/** A child process whose stdout is split into lines and whose stderr tail is kept for errors. */
export class Proc {
  constructor(cmd, args, opts = {}) {
    if (closing) throw new Error('bench is stopping');
    this.name = opts.name ?? path.basename(cmd);
    this.child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.pid = this.child.pid;
    this.stdout = '';
    this.stderr = '';
    this.exitCode = undefined;
    this.lineHandlers = [];
    let buf = '';
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
    // Only the tail matters (why it died); keep memory bounded on chatty processes.
    this.child.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-4000); });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, sig) => { this.exitCode = code ?? sig; tracked.delete(this); resolve(this.exitCode); });
      this.child.once('error', (err) => { this.exitCode = err.message; tracked.delete(this); resolve(this.exitCode); });
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
   * a supervisor killed with SIGKILL cannot stop its own children.
   */
  async stop(graceMs = 10_000) {
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
    while (family.some(isSame) && Date.now() < deadline) await sleep(50);
    for (const p of family.filter(isSame)) { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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
const PPID = 1, UTIME = 11, STIME = 12, STARTTIME = 19;

function isSame(p) {
  const f = statFields(p.pid);
  return f !== undefined && f[STARTTIME] === p.start && f[0] !== 'Z';
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

/** utime+stime of the given pids in microseconds (a process that is gone counts 0). */
export function cpuMicros(pids) {
  let ticks = 0;
  for (const pid of pids) {
    const f = statFields(pid);
    if (f) ticks += Number(f[UTIME]) + Number(f[STIME]);
  }
  return (ticks * 1e6) / ticksPerSecond();
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
