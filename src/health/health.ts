// Waiting for a starting instance to become healthy, with --health-rise consecutive passes,
// failing at once if it exits and at the deadline if it never gets there.
import { setTimeout as sleep } from 'node:timers/promises';
import { DeployError } from '../errors.js';
import { describeExit, type Instance } from '../backend/instance.js';
import type { Mode } from '../ipc.js';
import { commandProbe, httpProbe, probeEnv, type ProbeResult } from './probe.js';

export interface HealthOptions {
  mode: Mode;
  path: string;
  intervalMs: number;
  rise: number;
  cmd?: string;
  readyDelayMs?: number;
  /** --health-timeout: how long one check may wait for the app. */
  timeoutMs: number;
  /** --health notify: ready when the app sends READY=1, no polling. */
  notify?: boolean;
}

/** One check of `inst`: --health-cmd if given, else GET --health-path. */
export function probeOnce(inst: Instance, opts: HealthOptions, timeoutMs: number): Promise<ProbeResult> {
  return opts.cmd !== undefined
    ? commandProbe(opts.cmd, probeEnv(inst.address, inst.pid, inst.spec.gen), timeoutMs)
    : httpProbe(inst.address, opts.path, timeoutMs);
}

export async function waitHealthy(inst: Instance, opts: HealthOptions, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const exited = inst.exited.then((info) => {
    throw new DeployError(`backend ${inst.pid} ${describeExit(info)} before it was healthy`);
  });
  exited.catch(() => {});
  let onAbort = (): void => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new DeployError('deploy cancelled'));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => {});
  const guard = <T>(p: Promise<T>): Promise<T> => Promise.race([p, exited, aborted]);
  try {
    await probeUntilHealthy(inst, opts, timeoutMs, deadline, guard);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

async function probeUntilHealthy(
  inst: Instance, opts: HealthOptions, timeoutMs: number, deadline: number,
  guard: <T>(p: Promise<T>) => Promise<T>,
): Promise<void> {

  if (opts.notify) {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DeployError(`backend ${inst.pid} sent no READY=1 within ${timeoutMs} ms`)), Math.max(0, deadline - Date.now()));
    });
    try {
      await guard(Promise.race([inst.ready, late]));
    } finally {
      clearTimeout(timer);
    }
    return;
  }

  if (opts.cmd === undefined && opts.readyDelayMs !== undefined) {
    // Server::Starter's rule: alive after the delay counts as ready.
    if (opts.readyDelayMs > timeoutMs) throw new DeployError('--ready-delay is longer than --deploy-timeout');
    await guard(sleep(opts.readyDelayMs));
    return;
  }

  let passes = 0;
  let last: string | undefined;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new DeployError(`backend ${inst.pid} not healthy within ${timeoutMs} ms: ${last ?? 'no health check finished'}`);
    const budget = Math.min(left, opts.timeoutMs);
    const result: ProbeResult = await guard(probeOnce(inst, opts, budget));
    if (result.ok) {
      if (++passes >= opts.rise) return;
    } else {
      passes = 0;
      // A check the deploy deadline cut short says less than the answer before it.
      const cut = budget < opts.timeoutMs && Date.now() >= deadline;
      if (!cut || last === undefined) last = result.reason;
    }
    await guard(sleep(Math.min(opts.intervalMs, Math.max(0, deadline - Date.now()))));
  }
}
