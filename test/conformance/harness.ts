// Processes for the conformance suites: the backend run alone (the "direct" side) and
// hotproxy running the same backend, in any mode or engine.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import { startHotproxy, type Hotproxy } from '../helpers/hotproxy.js';
import { waitFor } from '../helpers/wait.js';
import { makeCert, tempDir } from '../helpers/tls.js';
import type { Via } from './differential.js';
import { OFF_VARIABLE, type Internal } from '../../src/internals/index.js';
import { INTERNALS_PROBED, NODE_INTERNAL_MISSING } from '../../src/messages.js';

export const BACKEND = fileURLToPath(new URL('./backend.js', import.meta.url));

export interface Mode extends Via {
  name: string;
  args: string[];
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
  { name: 'http mode, raw engine', args: ['--engine', 'raw'], proto: 'http' },
  { name: 'http mode, node engine', args: ['--engine', 'node'], proto: 'http' },
  { name: 'tcp mode', args: TCP, wire: true },
  { name: 'http mode, raw engine without hand-over (connections close gracefully on upgrade)', args: ['--engine', 'raw'], env: { [OFF_VARIABLE]: 'handover' }, fallbacks: ['handover'], noPipelining: true, proto: 'http' },
  // The raw engine on its sockets' streams: no handle-level reads, no body pump.
  { name: 'http mode, raw engine on socket streams (stream-wrap reported missing)', args: ['--engine', 'raw'], env: { [OFF_VARIABLE]: 'stream-wrap' }, fallbacks: ['stream-wrap'], proto: 'http' },
  // Every Node internal reported missing: what another Node would get (src/internals).
  { name: 'http mode on public APIs only (raw engine asked for, node engine serves, no hand-over)', args: ['--engine', 'raw'], env: { [OFF_VARIABLE]: 'all' }, fallbacks: ['http-parser', 'stream-wrap', 'handover'], noPipelining: true, proto: 'http' },
  // TLS at the edge (the client to --listen-tls, the direct side plain HTTP/1.1 as always). A
  // TLS connection is never handed over: a retiring worker closes it after an answer, so a
  // request pipelined behind that answer is the client's to resend (noPipelining, as above).
  { name: 'https mode (HTTP/1.1 over TLS, ALPN http/1.1)', args: ['--engine', 'raw'], client: 'https', proto: 'https', noPipelining: true },
  { name: 'h2 mode (HTTP/2 over TLS, ALPN h2)', args: ['--engine', 'raw'], client: 'h2', proto: 'https' },
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

/** Where the mode's client reaches hotproxy: its TLS listener, or its plain one. */
export const portFor = (mode: Mode, hp: Hotproxy): number => (mode.client === undefined ? hp.port : hp.tlsPort);

export async function startProxied(mode: Mode, extra: string[] = []): Promise<Hotproxy> {
  const tls = mode.client === undefined ? [] : tlsArgs();
  const hp = await startHotproxy([...mode.args, ...tls, ...extra], ['node', BACKEND], { env: mode.env });
  if (mode.client !== undefined && !(hp.tlsPort > 0)) throw new Error(`${mode.name}: hotproxy reported no TLS listener`);
  for (const internal of mode.fallbacks ?? []) await hp.waitForLog(NODE_INTERNAL_MISSING, (l) => l.internal === internal);
  // A mode is what it says: on a Node without an internal, "raw engine" would quietly be the
  // node engine (and "hand-over" a graceful close), and its results would be the fallback's.
  const probed = (await hp.waitForLog(INTERNALS_PROBED)).internals as Record<Internal, boolean>;
  const missing = Object.entries(probed).filter(([name, ok]) => !ok && !(mode.fallbacks ?? []).includes(name as Internal)).map(([name]) => name);
  if (missing.length > 0) throw new Error(`${mode.name}: this Node lacks ${missing.join(', ')}, so the mode would test a fallback`);
  return hp;
}

function tlsArgs(): string[] {
  const pair = makeCert(tempDir(), 'conformance', ['conformance.test']);
  return ['--listen-tls', '127.0.0.1:0', '--tls-cert', pair.cert, '--tls-key', pair.key];
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
