// `hotproxy reload|upgrade|status|stop|pause|resume`: find the running master's control socket,
// send one command, wait for the outcome. reload blocks until the deploy succeeded or failed and
// pause until nothing is in flight, so a deploy or migration script can trust the exit status.
import net from 'node:net';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlError, UsageError } from '../errors.js';
import { isRunning, readPid } from '../master/files.js';
import { parseEnv } from '../backend/command.js';
import { duration, parseDuration } from '../option-types.js';
import { formatAnswer } from './format.js';
import { CONTROL_SOCKET, DEFAULT_MAX_PAUSE_MS, type ControlCommand, type ControlRequest, type ControlResponse } from './protocol.js';

export interface LocateOptions {
  control?: string;
  pidFile?: string;
  runtimeDir?: string;
}

/** Runtime directories are named hotproxy-<master pid>-<random>. */
const DIR = /^hotproxy-(\d+)-/;

export function locateControl(opts: LocateOptions): string {
  if (opts.control) return opts.control;
  const base = opts.runtimeDir ?? (process.env.XDG_RUNTIME_DIR || tmpdir());
  const live = readdirSafe(base)
    .map((name) => ({ name, pid: Number(DIR.exec(name)?.[1]) }))
    .filter((d) => d.pid > 0 && existsSync(join(base, d.name, CONTROL_SOCKET)) && isRunning(d.pid));
  if (opts.pidFile) {
    const pid = readPid(opts.pidFile);
    if (pid === undefined) throw new ControlError(`no pid in ${opts.pidFile}`);
    const dir = live.find((d) => d.pid === pid);
    if (!dir) throw new ControlError(`no control socket for pid ${pid} in ${base} (is it running? started with another --runtime-dir?)`);
    return join(base, dir.name, CONTROL_SOCKET);
  }
  if (live.length === 0) throw new ControlError(`no running hotproxy found in ${base}: name one with --control or --pid-file`);
  if (live.length > 1) {
    throw new UsageError(`${live.length} hotproxy instances are running (pids ${live.map((d) => d.pid).join(', ')}): name one with --pid-file or --control`);
  }
  return join(base, live[0]!.name, CONTROL_SOCKET);
}

export function sendCommand(path: string, req: ControlRequest): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(path);
    let buf = '';
    sock.on('connect', () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on('data', (d) => (buf += d.toString()));
    sock.on('error', (err) => reject(new ControlError(`cannot reach hotproxy at ${path}: ${err.message}`)));
    sock.on('close', () => {
      const line = buf.split('\n')[0];
      if (!line) return reject(new ControlError(`hotproxy at ${path} closed the connection without an answer`));
      try {
        resolve(JSON.parse(line) as ControlResponse);
      } catch {
        reject(new ControlError(`hotproxy at ${path} answered something that is not JSON`));
      }
    });
  });
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export interface ControlOptions extends LocateOptions {
  json?: boolean;
  /** How long `stop` waits for the master to exit. */
  timeoutMs?: number;
}

/** What a control command's flags and arguments ask the master (texts as the CLI got them). */
export function controlRequest(cmd: ControlCommand, given: { env?: string[]; maxPause?: string; command?: string[]; canary?: string }): ControlRequest {
  switch (cmd) {
    case 'reload': {
      const env = given.env?.length ? parseEnv(given.env) : undefined;
      const command = given.command?.length ? given.command : undefined;
      const canary = given.canary === undefined ? undefined : parsePercent(given.canary);
      return { cmd, ...(command && { command }), ...(env && { env }), ...(canary !== undefined && { canary }) };
    }
    case 'pause': {
      const maxPauseMs = given.maxPause === undefined ? DEFAULT_MAX_PAUSE_MS : parseDuration('--max-pause', given.maxPause);
      duration().check('--max-pause', maxPauseMs);
      return { cmd, maxPauseMs };
    }
    default:
      return { cmd };
  }
}

/** `--canary 10` or `10%`: a share of clients, 0–100. */
function parsePercent(text: string): number {
  const m = /^(\d+(?:\.\d+)?)%?$/.exec(text.trim());
  const n = m ? Number(m[1]) : NaN;
  if (!(n >= 0 && n <= 100)) throw new UsageError(`--canary: "${text}" is not a percentage from 0 to 100`);
  return n;
}

/** Runs one control command; returns what to print and the exit status. Never exits itself. */
export async function runControl(req: ControlRequest, opts: ControlOptions): Promise<{ code: number; out: string }> {
  const path = locateControl(opts);
  const res = await sendCommand(path, req);
  const { cmd } = req;
  if (opts.json) return { code: res.ok ? 0 : 1, out: JSON.stringify(res, null, 2) };
  if (!res.ok) throw new ControlError(`${cmd} failed: ${res.error}`);
  if (cmd !== 'stop') return { code: 0, out: formatAnswer(cmd, res) };
  const pid = res.pid as number;
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  while (isRunning(pid)) {
    if (Date.now() > deadline) throw new ControlError(`hotproxy ${pid} is still stopping after ${opts.timeoutMs ?? 120_000} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { code: 0, out: `stopped hotproxy ${pid}` };
}
