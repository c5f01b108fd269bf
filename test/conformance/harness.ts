// Processes for the conformance suites: the backend run alone (the "direct" side) and
// hotproxy running the same backend, in any mode or engine.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import { startHotproxy, type Hotproxy } from '../helpers/hotproxy.js';
import { waitFor } from '../helpers/wait.js';

export const BACKEND = fileURLToPath(new URL('./backend.js', import.meta.url));

export interface Mode {
  name: string;
  args: string[];
  /** Compare every byte (tcp mode), not only what HTTP says. */
  wire?: boolean;
  env?: NodeJS.ProcessEnv;
}

export const MODES: Mode[] = [
  { name: 'http mode, raw engine', args: ['--engine', 'raw'] },
  { name: 'http mode, node engine', args: ['--engine', 'node'] },
  { name: 'tcp mode', args: ['--mode', 'tcp', '--ready-delay', '200ms'], wire: true },
];

/** The seed of this run's random exchanges: CONFORMANCE_SEED to replay one, else new each run. */
export const SEED = Number(process.env.CONFORMANCE_SEED ?? Math.floor(Math.random() * 2 ** 31));
export const EXCHANGES = Number(process.env.CONFORMANCE_EXCHANGES ?? 2000);

const direct = new Set<ChildProcess>();

/** The backend on its own loopback port, as a client would reach it without hotproxy. */
export async function startDirect(): Promise<number> {
  const proc = spawn('node', [BACKEND], { stdio: ['ignore', 'pipe', 'inherit'] });
  direct.add(proc);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const m = await waitFor(() => /listening (\d+)/.exec(out), 'the direct backend to listen');
  return Number(m[1]);
}

export function startProxied(mode: Mode, extra: string[] = []): Promise<Hotproxy> {
  return startHotproxy([...mode.args, ...extra], ['node', BACKEND], { env: mode.env });
}

/** Runs `tasks` with at most `n` at a time. */
export async function limit<T>(n: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]!();
    }
  }));
  return out;
}

afterEach(async () => {
  for (const p of direct) {
    if (p.exitCode === null && p.signalCode === null) {
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await gone;
    }
  }
  direct.clear();
});
