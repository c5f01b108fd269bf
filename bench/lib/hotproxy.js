// Runs the built hotproxy CLI and follows its JSON log: which pids are proxy workers (their
// CPU is the proxy's cost), which are backends, and when a deploy or upgrade finished.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Proc, sleep } from './procs.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = `${ROOT}dist/cli.js`;

export class Hotproxy {
  constructor(proc) {
    this.proc = proc;
    this.logs = [];
    this.port = 0;
    proc.onLine((line) => {
      try { this.logs.push(JSON.parse(line)); } catch { this.logs.push({ msg: line }); }
    });
  }

  get pid() { return this.proc.pid; }
  get url() { return `http://127.0.0.1:${this.port}`; }

  /** The master forwards nothing, but its CPU is part of the proxy's cost too. */
  get proxyPids() {
    return [this.pid, ...this.logs.filter((l) => l.msg === 'Proxy worker ready').map((l) => l.workerPid)];
  }

  /** Backend pids of the active generation (Ready, then the last Deployed line). */
  get backendPids() {
    const last = this.logs.filter((l) => l.msg === 'Ready' || l.msg === 'Deployed').pop();
    return last?.pids ?? [];
  }

  /** Polls the log from index `from` for a line matching `pred`. */
  async waitForLog(pred, timeoutMs = 30_000, from = 0) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.logs.slice(from).find(pred);
      if (hit) return hit;
      if (!this.proc.alive) throw new Error(`hotproxy exited (${this.proc.exitCode}): ${this.proc.stderr.trim()}`);
      if (Date.now() > deadline) throw new Error(`hotproxy: no matching log line after ${timeoutMs} ms`);
      await sleep(10);
    }
  }

  hup() { this.signal('SIGHUP'); }

  signal(sig) { this.proc.signal(sig); }

  /**
   * `hotproxy status --json` through the public CLI, i.e. what the master itself says now
   * (not what the log last implied); undefined if it cannot be asked.
   */
  async status(timeoutMs = 5_000) {
    const control = this.logs.find((l) => l.msg === 'Ready')?.control;
    if (!control || !this.proc.alive) return undefined;
    const p = new Proc(process.execPath, [CLI, 'status', '--json', '--control', control], { cwd: ROOT, name: 'hotproxy status', keepStdout: true });
    const guard = setTimeout(() => p.stop(1_000), timeoutMs);
    const code = await p.exited;
    clearTimeout(guard);
    try { return code === 0 ? JSON.parse(p.stdout) : undefined; } catch { return undefined; }
  }

  stop() { return this.proc.stop(20_000); }
}

/**
 * Starts hotproxy on a kernel-chosen port and waits for Ready and for every proxy worker.
 * `args` are extra CLI options; `command` is the backend command line; `cli` another build.
 */
export async function startHotproxy(args, command, { proxyWorkers = 1, cli = CLI } = {}) {
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: build first (npx tsc -p .)`);
  const argv = [cli, '--listen', '127.0.0.1:0', '--log-format', 'json', '--proxy-workers', String(proxyWorkers), ...args, '--', ...command];
  const hp = new Hotproxy(new Proc(process.execPath, argv, { cwd: ROOT, name: 'hotproxy' }));
  const ready = await hp.waitForLog((l) => l.msg === 'Ready');
  const listen = ready.listen[0];
  hp.port = Number(listen.slice(listen.lastIndexOf(':') + 1));
  // Workers normally report before Ready; wait anyway so CPU sampling never misses one.
  const deadline = Date.now() + 10_000;
  while (hp.proxyPids.length < proxyWorkers + 1) {
    if (Date.now() > deadline) throw new Error('hotproxy: proxy workers did not report ready');
    await sleep(10);
  }
  return hp;
}
