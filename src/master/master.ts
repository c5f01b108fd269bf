// The master: the one stable process users signal. It owns the public listeners, the proxy
// workers and the backend generations, and forwards no traffic itself.
import { Coalescer } from '../coalescer.js';
import { describe, DeployError, UnsupportedNodeError } from '../errors.js';
import { checkCommand } from '../backend/command.js';
import type { Logger } from '../log.js';
import { healthOptions, liveOptions, workerConfig, type Options } from '../options.js';
import { formatAddress, type Address } from '../address.js';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Reaper } from '../backend/reaper.js';
import { CONTROL_SOCKET, DEFAULT_MAX_PAUSE_MS, type ControlRequest, type ControlResponse } from '../control/protocol.js';
import { ControlServer } from '../control/server.js';
import { Deployer, type DeployResult } from './deployer.js';
import { Pauser, type PauseResult, type ResumeResult } from './pause.js';
import type { Release } from '../backend/command.js';
import { duration } from '../option-types.js';
import { checkAccessLog, claimPidFile, removeQuietly, statusFileContent, writeAtomic } from './files.js';
import { STDOUT } from '../proxy/access-log.js';
import { collectStatus, type Status } from './status.js';
import { bindListeners, type Listener } from './listeners.js';
import { masterUnsupported } from '../internals/index.js';
import { openEdge, type Edge } from '../tls/edge.js';
import { takeInheritedSockets } from './activation.js';
import { Notifier } from './notify.js';
import { AdminServer } from '../metrics/admin.js';
import { MasterMetrics } from '../metrics/metrics.js';
import { ProxyWorkers, type UpgradeResult } from './proxy-workers.js';
import { createRuntimeDir, removeRuntimeDir } from './runtime-dir.js';
import { StateMachine, type Moves } from '../state.js';
import { LISTENING, READY, SYSTEMD_SOCKETS_UNUSED, UPGRADED, UPGRADE_FAILED, UPGRADING } from '../messages.js';

export type MasterState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

const MOVES: Moves<MasterState> = {
  idle: ['starting', 'stopping'],
  starting: ['running', 'stopping'],
  running: ['stopping'],
  stopping: ['stopped'],
  stopped: [],
};

export class Master {
  private machine: StateMachine<MasterState>;
  listeners: Listener[] = [];
  private runtimeDir: string | undefined;
  private workers: ProxyWorkers | undefined;
  private deployer: Deployer | undefined;
  private pauser: Pauser | undefined;
  private stopping: Promise<void> | undefined;
  private reaper: Reaper | undefined;
  private control: ControlServer | undefined;
  private notifier: Notifier | undefined;
  private edge: Edge | undefined;
  private admin: AdminServer | undefined;
  private metrics: MasterMetrics | undefined;
  private upgrades = new Coalescer(() => this.runUpgrade());
  private readonly startedAt = Date.now();
  private resolveStopped!: () => void;
  /** Resolves once stopped, however the stop was asked for (signal, control, API). */
  readonly stopped = new Promise<void>((resolve) => (this.resolveStopped = resolve));
  private log: Logger;

  constructor(readonly options: Options, private rootLog: Logger) {
    this.log = rootLog.child({ component: 'master' });
    this.machine = new StateMachine<MasterState>('idle', MOVES, this.log, 'Master state', 'debug');
  }

  get state(): MasterState {
    return this.machine.state;
  }

  /** Resolves once the first generation serves; on failure everything started is stopped. */
  async start(): Promise<void> {
    const o = this.options;
    this.machine.to('starting');
    try {
      const unsupported = masterUnsupported();
      if (unsupported) throw new UnsupportedNodeError(unsupported);
      // systemd's variables are ours alone: taken before anything is spawned.
      const inherited = takeInheritedSockets();
      this.notifier = Notifier.fromEnv(this.rootLog);
      checkCommand(o.command[0]!);
      if (o.accessLog !== undefined && o.accessLog !== STDOUT) checkAccessLog(o.accessLog);
      if (o.pidFile) claimPidFile(o.pidFile);
      this.runtimeDir = createRuntimeDir(o.runtimeDir);
      const bound = await bindListeners(o.listen, inherited, o.listenTls);
      this.listeners = bound.listeners;
      if (bound.unused.length) this.log.warn({ sockets: bound.unused }, SYSTEMD_SOCKETS_UNUSED);
      await this.openControl(this.runtimeDir);
      if (o.metrics) await this.openAdmin(o.metrics);
      this.workers = new ProxyWorkers({
        count: o.proxyWorkers,
        fds: this.listeners.filter((l) => !l.tls).map((l) => l.fd),
        tlsFds: this.listeners.filter((l) => l.tls).map((l) => l.fd),
        config: workerConfig(o),
        log: this.rootLog,
        onFinalTraffic: (t) => this.metrics?.retire(t),
        onSuspect: (id, gen, reason) => { if (this.deployer?.active?.id === gen) this.deployer.active.suspect(id, reason); },
      });
      this.edge = await openEdge(o, this.rootLog, this.workers);
      await this.workers.start();
      this.pauser = new Pauser(this.workers, this.rootLog);
      const fromSystemd = this.listeners.filter((l) => l.fdName !== undefined).map((l) => `${formatAddress(l.address)} (fd ${l.fd}, ${l.fdName})`);
      this.log.info({ ...this.listenFields(), mode: o.mode, workers: this.workers.pids, ...(fromSystemd.length ? { fromSystemd } : {}) }, LISTENING);
      this.reaper = new Reaper();
      this.deployer = new Deployer({
        options: o, runtimeDir: this.runtimeDir, log: this.rootLog, reaper: this.reaper,
        health: healthOptions(o), live: liveOptions(o),
      }, this.workers);
      this.deployer.on('deployed', (r) => this.metrics?.deployed(r.ok, r.ok ? r.ms : undefined));
      this.deployer.on('restarted', (why) => this.metrics?.restarted(why));
      const first = await this.deployer.deploy();
      if (!first.ok) throw new DeployError(`the first generation did not start: ${first.error}`);
      this.deployer.on('change', () => this.writeStatusFile());
      this.writeStatusFile();
      if (o.pidFile) writeAtomic(o.pidFile, `${process.pid}\n`);
      this.machine.to('running');
      this.edge?.serve();
      const metrics = this.admin ? formatAddress(this.admin.address) : undefined;
      this.log.info({ gen: first.gen, pids: first.pids, ...this.listenFields(), control: this.control?.path, metrics }, READY);
      void this.notifier?.ready(`serving generation ${first.gen}`);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** For the log: the plain addresses and the TLS ones. */
  private listenFields(): { listen: string[]; listenTls?: string[] } {
    const tls = this.listeners.filter((l) => l.tls).map((l) => formatAddress(l.address));
    return { listen: this.listeners.filter((l) => !l.tls).map((l) => formatAddress(l.address)), ...(tls.length ? { listenTls: tls } : {}) };
  }

  /** The public addresses actually bound (a port of 0 resolved). */
  get addresses(): Address[] {
    return this.listeners.map((l) => l.address);
  }

  /**
   * A new generation (HUP). Coalesced with one in progress; an upgrade in progress goes first.
   * With a command or env, a generation of that release (the command defaults to the current
   * one, the variables are exactly those given); once it serves, HUP and restarts run it too.
   */
  async reload(change?: Partial<Release>, canaryPercent?: number): Promise<DeployResult> {
    if (!this.deployer || this.state !== 'running') return { ok: false, gen: 0, error: `hotproxy is ${this.state}` };
    const release = change && (change.command || change.env)
      ? { command: change.command ?? this.deployer.current.command, env: change.env ?? {} }
      : undefined;
    if (this.upgrades.busy) await this.upgrades.settled();
    void this.notifier?.reloading();
    const r = await this.deployer.deploy(release, canaryPercent);
    const active = this.deployer.active?.id;
    void this.notifier?.ready(r.ok ? `serving generation ${r.gen}` : `deploy of generation ${r.gen} failed; serving generation ${active}`);
    return r;
  }

  /** A canary takes all traffic (`hotproxy promote`); queued with deploys. */
  async promote(): Promise<DeployResult> {
    if (!this.deployer || this.state !== 'running') return { ok: false, gen: 0, error: `hotproxy is ${this.state}` };
    const r = await this.deployer.promote();
    void this.notifier?.ready(`serving generation ${this.deployer.active?.id}`);
    return r;
  }

  /** Back to the previous generation, or the end of a canary (`hotproxy rollback`); queued with deploys. */
  async rollback(): Promise<DeployResult> {
    if (!this.deployer || this.state !== 'running') return { ok: false, gen: 0, error: `hotproxy is ${this.state}` };
    if (this.upgrades.busy) await this.upgrades.settled();
    void this.notifier?.reloading();
    const r = await this.deployer.rollback();
    void this.notifier?.ready(`serving generation ${this.deployer.active?.id}`);
    return r;
  }

  /**
   * New proxy workers from the code on disk (USR2). Coalesced like deploys: asked for during
   * one, exactly one more runs after it. Never at the same time as a deploy.
   */
  upgrade(): Promise<UpgradeResult> {
    if (!this.workers || !this.deployer || this.state !== 'running') return Promise.resolve({ ok: false, error: `hotproxy is ${this.state}` });
    return this.upgrades.request();
  }

  /**
   * Holds new requests (`hotproxy pause`) and resolves once nothing is in flight; ends by itself
   * after `maxPauseMs`, answering what it held 503 (src/master/pause.ts).
   */
  async pause(maxPauseMs = DEFAULT_MAX_PAUSE_MS): Promise<PauseResult> {
    if (!this.pauser || this.state !== 'running') return { ok: false, error: `hotproxy is ${this.state}` };
    try {
      duration().check('--max-pause', maxPauseMs);
    } catch (err) {
      return { ok: false, error: describe(err) };
    }
    return this.pauser.pause(maxPauseMs);
  }

  /** Releases what a pause holds, in order; without a pause there is nothing to do. */
  async resume(): Promise<ResumeResult | { ok: false; error: string }> {
    if (!this.pauser || this.state !== 'running') return { ok: false, error: `hotproxy is ${this.state}` };
    return this.pauser.resume();
  }

  private async runUpgrade(): Promise<UpgradeResult> {
    const workers = this.workers!;
    await this.deployer!.settled();
    const before = workers.pids;
    this.log.info({ workers: before }, UPGRADING);
    // Old workers retire once a pause ends (what they hold is released, not cut): allow for it.
    const drainMs = this.options.drainTimeoutMs + (this.pauser?.leftMs() ?? 0);
    const r = await workers.upgrade(this.options.upgradeTimeoutMs, drainMs);
    this.metrics?.upgraded(r.ok);
    if (r.ok) this.log.info({ workers: r.pids, previous: before, ms: r.ms }, UPGRADED);
    else this.log.error({ err: r.error }, UPGRADE_FAILED);
    return r;
  }

  /** SIGUSR1: every proxy worker opens the access log file again; false if there is no file. */
  reopenAccessLog(): boolean {
    if (this.options.accessLog === undefined || this.options.accessLog === STDOUT) return false;
    this.workers?.reopenAccessLog();
    return true;
  }

  async status(): Promise<Status> {
    const d = this.deployer;
    const gens = [d?.green, d?.canary, d?.active, d?.warm, ...(d?.draining ?? [])].filter((g) => g !== undefined);
    return collectStatus({
      pid: process.pid, state: this.state, mode: this.options.mode,
      ...this.listenFields(), uptimeMs: Date.now() - this.startedAt,
      deploying: d?.green !== undefined, paused: this.pauser?.status() ?? null,
      canary: d?.canary ? { gen: d.canary.id, percent: d.canaryPercent } : null,
    }, gens, this.workers);
  }

  private async openControl(runtimeDir: string): Promise<void> {
    const path = this.options.control ?? join(runtimeDir, CONTROL_SOCKET);
    this.control = await ControlServer.open(path, (req) => this.command(req), this.rootLog);
    // Found by pid (hotproxy status --pid-file) even when it lives elsewhere.
    if (this.options.control) symlinkSync(path, join(runtimeDir, CONTROL_SOCKET));
  }

  private async openAdmin(address: Address): Promise<void> {
    const metrics = new MasterMetrics({
      workerStats: () => this.workers?.stats() ?? Promise.resolve([]),
      activeGeneration: () => this.deployer?.active?.id,
    });
    this.metrics = metrics;
    this.admin = await AdminServer.open(address, {
      metrics: async () => ({ contentType: metrics.contentType, body: await metrics.render() }),
      notReady: () => (this.state === 'running' ? undefined : this.state),
    }, this.rootLog);
  }

  private async command(req: ControlRequest): Promise<ControlResponse> {
    switch (req.cmd) {
      case 'status':
        return { ok: true, ...(await this.status()) };
      case 'reload':
        return { ...(await this.reload({ command: req.command, env: req.env }, req.canary)) };
      case 'promote':
        return { ...(await this.promote()) };
      case 'rollback':
        return { ...(await this.rollback()) };
      case 'pause':
        return { ...(await this.pause(req.maxPauseMs)) };
      case 'resume':
        return { ...(await this.resume()) };
      case 'upgrade':
        return { ...(await this.upgrade()) };
      case 'stop':
        // Answer now; the client waits for this pid to exit.
        void this.stop();
        return { ok: true, pid: process.pid };
      default:
        return { ok: false, error: `unknown command "${String((req as { cmd: unknown }).cmd)}"` };
    }
  }

  private writeStatusFile(): void {
    const file = this.options.statusFile;
    const d = this.deployer;
    if (!file || !d) return;
    const gens = [d.active, d.canary, d.warm, ...d.draining].filter((g) => g !== undefined);
    writeAtomic(file, statusFileContent(gens.map((g) => ({ gen: g.id, pids: g.pids }))));
  }

  /** Stop accepting, let in-flight requests finish, stop backends, clean up. Idempotent. */
  stop(): Promise<void> {
    return (this.stopping ??= this.doStop());
  }

  private async doStop(): Promise<void> {
    const o = this.options;
    this.machine.to('stopping');
    this.log.info('Stopping');
    const notified = this.notifier?.stopping();
    try {
      // What a pause holds is served while the workers drain, not refused.
      await this.pauser?.stop();
      // Stop accepting: drop the master's copies first, so the socket stops listening the
      // moment the last worker closes its own — nothing is left queued that nobody accepts.
      for (const l of this.listeners) l.close();
      // Workers next: they finish in-flight requests while the backends still run.
      await this.workers?.stop(o.drainTimeoutMs);
      await this.deployer?.stop();
    } catch (err) {
      this.log.error({ err: describe(err) }, 'Error while stopping');
    }
    await this.edge?.close();
    this.reaper?.close();
    this.control?.close();
    this.admin?.close();
    removeQuietly(o.pidFile);
    removeQuietly(o.statusFile);
    if (this.runtimeDir) removeRuntimeDir(this.runtimeDir);
    await notified;
    this.machine.to('stopped');
    this.log.info('Stopped');
    this.resolveStopped();
  }

  /** A second Ctrl-C: SIGKILL everything now. */
  kill(): void {
    this.workers?.kill();
    this.deployer?.kill();
    this.control?.close();
    this.admin?.close();
    removeQuietly(this.options.pidFile);
    removeQuietly(this.options.statusFile);
    if (this.runtimeDir) removeRuntimeDir(this.runtimeDir);
  }
}
