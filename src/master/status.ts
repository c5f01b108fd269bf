// What `hotproxy status` shows: listeners, generations with pids, health and age, and what
// each proxy worker has in flight and open.
import type { Generation, InstanceStatus } from './generation.js';
import type { PauseStatus } from './pause.js';
import type { ProxyWorkers } from './proxy-workers.js';

export interface GenerationStatus {
  gen: number;
  state: string;
  pids: number[];
  healthy: number;
  size: number;
  ageMs: number;
  inflight: number;
  /** Each instance's health and, when unhealthy, why. */
  instances: InstanceStatus[];
  /** What it runs, and the names of the variables added for it (hotproxy reload --env). */
  command: string[];
  envKeys: string[];
}

export interface WorkerStatus {
  worker: number;
  pid: number;
  connections: number | null;
  /** Of the connections, idle keep-alive ones held as bare handles. */
  idle: number | null;
  inflight: number | null;
  /** Held by a pause. */
  held: number | null;
}

export interface Status {
  pid: number;
  state: string;
  mode: string;
  listen: string[];
  /** --listen-tls addresses, when there are any. */
  listenTls?: string[];
  uptimeMs: number;
  deploying: boolean;
  /** A canary (`reload --canary`): its generation and the share of clients it serves. */
  canary: { gen: number; percent: number } | null;
  /** Set while `hotproxy pause` holds requests; `held` sums the workers'. */
  paused: (PauseStatus & { held: number }) | null;
  generations: GenerationStatus[];
  workers: WorkerStatus[];
}

export async function collectStatus(base: Omit<Status, 'generations' | 'workers' | 'paused'> & { paused: PauseStatus | null }, gens: Generation[], workers: ProxyWorkers | undefined): Promise<Status> {
  const stats = (await workers?.stats()) ?? [];
  const inflightOf = (gen: number): number => stats.reduce((n, w) => n + (w.stats?.inflight[gen] ?? 0), 0);
  const held = stats.reduce((n, w) => n + (w.stats?.held ?? 0), 0);
  return {
    ...base,
    paused: base.paused && { ...base.paused, held },
    generations: gens.map((g) => ({
      gen: g.id, state: g.state, pids: g.pids, healthy: g.healthyCount, size: g.size,
      ageMs: Date.now() - g.startedAt, inflight: inflightOf(g.id), instances: g.instances(),
      command: g.release.command, envKeys: Object.keys(g.release.env),
    })),
    workers: stats.map((w) => ({
      worker: w.worker, pid: w.pid,
      connections: w.stats?.connections ?? null,
      idle: w.stats?.idle ?? null,
      inflight: w.stats ? Object.values(w.stats.inflight).reduce((a, b) => a + b, 0) : null,
      held: w.stats?.held ?? null,
    })),
  };
}
