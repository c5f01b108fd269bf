// The master: the one stable process users signal. It owns the public listeners, the proxy
// workers and the backend generations, and forwards no traffic itself.
import { describe, DeployError } from '../errors.js';
import { checkCommand } from '../backend/command.js';
import type { Logger } from '../log.js';
import type { Options } from '../options.js';
import { formatAddress, type Address } from '../address.js';
import { Reaper } from '../backend/reaper.js';
import { Deployer, type DeployResult } from './deployer.js';
import { bindListeners, type Listener } from './listeners.js';
import { ProxyWorkers } from './proxy-workers.js';
import { createRuntimeDir, removeRuntimeDir } from './runtime-dir.js';

export type MasterState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

export class Master {
  state: MasterState = 'idle';
  listeners: Listener[] = [];
  private runtimeDir: string | undefined;
  private workers: ProxyWorkers | undefined;
  private deployer: Deployer | undefined;
  private stopping: Promise<void> | undefined;
  private reaper: Reaper | undefined;
  private log: Logger;

  constructor(readonly options: Options, private rootLog: Logger) {
    this.log = rootLog.child({ component: 'master' });
  }

  private setState(to: MasterState): void {
    if (to === this.state) return;
    this.log.debug({ from: this.state, to }, 'Master state');
    this.state = to;
  }

  /** Resolves once the first generation serves; on failure everything started is stopped. */
  async start(): Promise<void> {
    const o = this.options;
    this.setState('starting');
    try {
      checkCommand(o.command[0]!);
      this.runtimeDir = createRuntimeDir(o.runtimeDir);
      this.listeners = await bindListeners(o.listen);
      this.workers = new ProxyWorkers({
        count: o.proxyWorkers,
        fds: this.listeners.map((l) => l.fd),
        config: {
          mode: o.mode, queueTimeoutMs: o.queueTimeoutMs, headerTimeoutMs: o.headerTimeoutMs,
          keepAliveTimeoutMs: o.keepAliveTimeoutMs, trustProxy: o.trustProxy,
          log: { level: o.logLevel, format: o.logFormat },
        },
        log: this.rootLog,
      });
      await this.workers.start();
      this.log.info({ listen: this.addresses.map(formatAddress), mode: o.mode, workers: this.workers.pids }, 'Listening');
      this.reaper = new Reaper();
      this.deployer = new Deployer({
        options: o, runtimeDir: this.runtimeDir, log: this.rootLog, reaper: this.reaper,
        health: {
          mode: o.mode, path: o.healthPath, intervalMs: o.healthIntervalMs, rise: o.healthRise,
          cmd: o.healthCmd, readyDelayMs: o.readyDelayMs,
        },
      }, this.workers);
      const first = await this.deployer.deploy();
      if (!first.ok) throw new DeployError(`the first generation did not start: ${first.error}`);
      this.setState('running');
      this.log.info({ gen: first.gen, pids: first.pids, listen: this.addresses.map(formatAddress) }, 'Ready');
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** The public addresses actually bound (a port of 0 resolved). */
  get addresses(): Address[] {
    return this.listeners.map((l) => l.address);
  }

  /** A new generation (HUP). Coalesced with one in progress. */
  reload(): Promise<DeployResult> {
    if (!this.deployer || this.state !== 'running') {
      return Promise.resolve({ ok: false, gen: 0, error: `hotproxy is ${this.state}` });
    }
    return this.deployer.deploy();
  }

  status(): { state: MasterState; active?: { gen: number; pids: number[] }; draining: Array<{ gen: number; pids: number[] }>; workers: number[] } {
    const a = this.deployer?.active;
    return {
      state: this.state,
      active: a && { gen: a.id, pids: a.pids },
      draining: [...(this.deployer?.draining ?? [])].map((g) => ({ gen: g.id, pids: g.pids })),
      workers: this.workers?.pids ?? [],
    };
  }

  /** Stop accepting, let in-flight requests finish, stop backends, clean up. Idempotent. */
  stop(): Promise<void> {
    return (this.stopping ??= this.doStop());
  }

  private async doStop(): Promise<void> {
    const o = this.options;
    this.setState('stopping');
    this.log.info('Stopping');
    try {
      // Stop accepting: drop the master's copies first, so the socket stops listening the
      // moment the last worker closes its own — nothing is left queued that nobody accepts.
      for (const l of this.listeners) l.close();
      // Workers next: they finish in-flight requests while the backends still run.
      await this.workers?.stop(o.drainTimeoutMs);
      await this.deployer?.stop();
    } catch (err) {
      this.log.error({ err: describe(err) }, 'Error while stopping');
    }
    this.reaper?.close();
    if (this.runtimeDir) removeRuntimeDir(this.runtimeDir);
    this.setState('stopped');
    this.log.info('Stopped');
  }

  /** A second Ctrl-C: SIGKILL everything now. */
  kill(): void {
    this.workers?.kill();
    this.deployer?.kill();
    if (this.runtimeDir) removeRuntimeDir(this.runtimeDir);
  }
}
