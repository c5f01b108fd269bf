// Processes for the conformance suites: the backend run alone (the "direct" side) and
// hotproxy running the same backend, in any mode or engine.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import { startHotproxy, type Hotproxy } from '../helpers/hotproxy.js';
import { waitFor } from '../helpers/wait.js';
import { OFF_VARIABLE, type Internal } from '../../src/internals/index.js';
import { INTERNALS_PROBED, NODE_INTERNAL_MISSING } from '../../src/messages.js';

export const BACKEND = fileURLToPath(new URL('./backend.js', import.meta.url));

export interface Mode {
  name: string;
  args: string[];
  /** Compare every byte (tcp mode), not only what HTTP says. */
  wire?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Internals switched off: the worker must say it falls back for each. */
  fallbacks?: Internal[];
  /**
   * No pipelined bursts in storms: without hand-over a retiring worker closes connections, and
   * a request pipelined behind its `Connection: close` answer is for the client to send again
   * (RFC 9112 §9.3.2); the no-retry client would count it.
   */
  noPipelining?: boolean;
}

const TCP = ['--mode', 'tcp', '--ready-delay', '200ms'];

export const MODES: Mode[] = [
  { name: 'http mode, raw engine', args: ['--engine', 'raw'] },
  { name: 'http mode, node engine', args: ['--engine', 'node'] },
  { name: 'tcp mode', args: TCP, wire: true },
  { name: 'http mode, raw engine without hand-over (connections close gracefully on upgrade)', args: ['--engine', 'raw'], env: { [OFF_VARIABLE]: 'handover' }, fallbacks: ['handover'], noPipelining: true },
  // Every Node internal reported missing: what another Node would get (src/internals).
  { name: 'http mode on public APIs only (raw engine asked for, node engine serves, no hand-over)', args: ['--engine', 'raw'], env: { [OFF_VARIABLE]: 'all' }, fallbacks: ['http-parser', 'stream-wrap', 'handover'], noPipelining: true },
  { name: 'tcp mode on public APIs only (pipe, no splice)', args: TCP, wire: true, env: { [OFF_VARIABLE]: 'all' }, fallbacks: ['http-parser', 'stream-wrap', 'handover'] },
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

export async function startProxied(mode: Mode, extra: string[] = []): Promise<Hotproxy> {
  const hp = await startHotproxy([...mode.args, ...extra], ['node', BACKEND], { env: mode.env });
  for (const internal of mode.fallbacks ?? []) await hp.waitForLog(NODE_INTERNAL_MISSING, (l) => l.internal === internal);
  // A mode is what it says: on a Node without an internal, "raw engine" would quietly be the
  // node engine (and "hand-over" a graceful close), and its results would be the fallback's.
  const probed = (await hp.waitForLog(INTERNALS_PROBED)).internals as Record<Internal, boolean>;
  const missing = Object.entries(probed).filter(([name, ok]) => !ok && !(mode.fallbacks ?? []).includes(name as Internal)).map(([name]) => name);
  if (missing.length > 0) throw new Error(`${mode.name}: this Node lacks ${missing.join(', ')}, so the mode would test a fallback`);
  return hp;
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
