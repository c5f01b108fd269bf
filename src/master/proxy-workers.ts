// The master's handle on the data plane: N proxy worker processes on the same listener fds.
// Routes go to all of them and count only once every live worker has acknowledged.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Backoff } from '../backoff.js';
import { WorkerError } from '../errors.js';
import type { Metrics } from '../metrics/traffic.js';
import type { AcmeTokens, Canary, CertPair, FromWorker, Route, Target, ToWorker, WorkerConfig, WorkerStats } from '../ipc.js';
import type { Logger } from '../log.js';
import { closeHandle, sendHandle } from '../internals/index.js';
import { PROXY_WORKER_EXITED, PROXY_WORKER_READY, PROXY_WORKER_RETIRED } from '../messages.js';

const WORKER_PATH = fileURLToPath(new URL('../proxy/worker.js', import.meta.url));
const READY_TIMEOUT_MS = 10_000;
/** A worker that does not acknowledge a route this fast is stuck; it is replaced. */
const ROUTE_ACK_TIMEOUT_MS = 5_000;
/** Listener fds start after stdin, stdout, stderr and the IPC channel. */
const FIRST_LISTENER_FD = 4;

class ProxyWorker {
  readonly exited: Promise<void>;
  alive = true;
  /** Sent its last traffic totals: exiting. */
  final = false;

  constructor(readonly index: number, readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', () => { this.alive = false; resolve(); }));
  }

  send(msg: ToWorker): void {
    if (this.alive && this.child.connected) this.child.send(msg);
  }

  /** True when a matching message arrives; false if the worker exits first, time runs out or `signal` aborts. */
  waitFor(match: (m: FromWorker) => boolean, timeoutMs = Infinity, signal?: AbortSignal): Promise<boolean> {
    if (!this.alive || signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (v: boolean): void => {
        clearTimeout(timer);
        this.child.off('message', onMessage);
        this.child.off('exit', onExit);
        signal?.removeEventListener('abort', onExit);
        resolve(v);
      };
      const onMessage = (m: FromWorker): void => { if (match(m)) done(true); };
      const onExit = (): void => done(false);
      this.child.on('message', onMessage).once('exit', onExit);
      signal?.addEventListener('abort', onExit);
      if (timeoutMs !== Infinity) timer = setTimeout(() => done(false), timeoutMs);
    });
  }
}

export type UpgradeResult = { ok: true; pids: number[]; ms: number } | { ok: false; error: string };

export interface ProxyWorkersOptions {
  count: number;
  fds: number[];
  /** --listen-tls fds, passed after the plain ones. */
  tlsFds: number[];
  config: Omit<WorkerConfig, 'index' | 'fds' | 'tlsFds'>;
  log: Logger;
  /** A retiring worker's last totals (for /metrics). */
  onFinalTraffic?: (traffic: Metrics) => void;
  /** A worker saw an instance refuse a connection or stay silent past --backend-timeout. */
  onSuspect?: (id: string, gen: number, reason: 'refused' | 'timeout') => void;
}

export class ProxyWorkers {
  private workers: Array<ProxyWorker | undefined>;
  /** Started by an upgrade, not serving yet: they get routes too, so none starts stale. */
  private pending: ProxyWorker[] = [];
  /** Replaced by an upgrade: finishing and handing over their connections. */
  private retiring = new Set<ProxyWorker>();
  private relayNext = 0;
  private backoffs: Backoff[];
  private route: Route = { seq: 0, gen: null, targets: [] };
  /** The latest of each, for workers started later (crash, upgrade). */
  private certs: CertPair[] = [];
  private tokens: AcmeTokens = {};
  private tokensSeq = 0;
  /** A pause is on: workers started meanwhile (crash, upgrade) hold requests from the start. */
  private paused = false;
  private pauseSeq = 0;
  private stopping = false;
  private statsSeq = 0;
  private log: Logger;

  constructor(private opts: ProxyWorkersOptions) {
    this.workers = new Array(opts.count).fill(undefined);
    this.backoffs = this.workers.map(() => new Backoff());
    this.log = opts.log.child({ component: 'master' });
  }

  /** Pids of the serving workers. */
  get pids(): number[] {
    return this.workers.filter((w) => w?.alive).map((w) => w!.child.pid!);
  }

  async start(): Promise<void> {
    const results = await Promise.all(this.workers.map((_, i) => this.spawn(i)));
    if (results.some((ok) => !ok)) throw new WorkerError('a proxy worker did not start');
  }

  /** Starts a worker and resolves once it is ready (or with why it is not). */
  private launch(index: number, timeoutMs: number): { w: ProxyWorker; ready: Promise<string | undefined> } {
    const { fds, tlsFds, config } = this.opts;
    // The master's Node flags (`node --cpu-prof hotproxy`, a heap limit) apply to its workers
    // too, as cluster.fork() does it. --expose-gc: see internals/memory.ts.
    const child = spawn(process.execPath, [...process.execArgv, '--expose-gc', WORKER_PATH], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', ...fds, ...tlsFds],
    });
    const w = new ProxyWorker(index, child);
    child.on('error', () => {});
    child.on('message', (m: FromWorker, handle: unknown) => {
      if (m.t === 'conn') this.relay(handle);
      if (m.t === 'final') { w.final = true; this.opts.onFinalTraffic?.(m.traffic); }
      if (m.t === 'suspect') this.opts.onSuspect?.(m.id, m.gen, m.reason);
    });
    void w.exited.then(() => this.onExit(w));
    const ready = w.waitFor((m) => m.t === 'ready', timeoutMs).then((ok) => {
      if (ok) return undefined;
      const why = w.alive ? `not ready within ${timeoutMs} ms` : `exited (${child.exitCode ?? child.signalCode}) before it was ready`;
      child.kill('SIGKILL');
      return `proxy worker ${child.pid} ${why}`;
    });
    w.send({
      t: 'config',
      config: {
        ...config, index,
        fds: fds.map((_, k) => FIRST_LISTENER_FD + k),
        tlsFds: tlsFds.map((_, k) => FIRST_LISTENER_FD + fds.length + k),
      },
      route: this.route,
      paused: this.paused,
      certs: this.certs,
      tokens: this.tokens,
    });
    return { w, ready };
  }

  private async spawn(index: number): Promise<boolean> {
    const { w, ready } = this.launch(index, READY_TIMEOUT_MS);
    this.workers[index] = w;
    if ((await ready) !== undefined) return false;
    this.backoffs[index]!.up();
    this.log.info({ worker: index, workerPid: w.child.pid }, PROXY_WORKER_READY);
    return true;
  }

  /**
   * Replaces every worker with a new one started from the code on disk now. The old ones
   * keep serving until all new ones are ready; if one is not, the new ones are killed and
   * nothing changed. Then the old ones hand their connections over and exit.
   */
  async upgrade(timeoutMs: number, drainTimeoutMs: number): Promise<UpgradeResult> {
    const t0 = Date.now();
    const fresh = this.workers.map((_, i) => this.launch(i, timeoutMs));
    this.pending = fresh.map((f) => f.w);
    const failures = (await Promise.all(fresh.map((f) => f.ready))).filter((r) => r !== undefined);
    this.pending = [];
    if (failures.length > 0) {
      for (const f of fresh) f.w.child.kill('SIGKILL');
      await Promise.all(fresh.map((f) => f.w.exited));
      return { ok: false, error: failures[0]! };
    }
    const old = this.workers.filter((w): w is ProxyWorker => w !== undefined && w.alive);
    this.workers = fresh.map((f) => f.w);
    for (const [i, f] of fresh.entries()) {
      this.backoffs[i]!.up();
      this.log.info({ worker: i, workerPid: f.w.child.pid }, PROXY_WORKER_READY);
    }
    for (const w of old) {
      this.retiring.add(w);
      w.send({ t: 'retire', timeoutMs: drainTimeoutMs });
      const timer = setTimeout(() => w.child.kill('SIGKILL'), drainTimeoutMs + 5_000);
      void w.exited.then(() => clearTimeout(timer));
    }
    return { ok: true, pids: this.pids, ms: Date.now() - t0 };
  }

  /** A connection a retiring worker handed over goes to a serving one. */
  private relay(handle: unknown): void {
    const serving = this.workers.filter((w): w is ProxyWorker => w !== undefined && w.alive);
    if (serving.length === 0) return closeHandle(handle);
    const to = serving[this.relayNext++ % serving.length]!;
    sendHandle(to.child as never, { t: 'conn' } satisfies ToWorker, handle).finally(() => closeHandle(handle)).catch(() => {});
  }

  private onExit(w: ProxyWorker): void {
    if (this.retiring.delete(w)) {
      this.log.info({ worker: w.index, workerPid: w.child.pid }, PROXY_WORKER_RETIRED);
      return;
    }
    if (this.stopping || this.workers[w.index] !== w) return;
    this.workers[w.index] = undefined;
    const delay = this.backoffs[w.index]!.take();
    this.log.error({ worker: w.index, workerPid: w.child.pid, code: w.child.exitCode, signal: w.child.signalCode, restartInMs: delay }, PROXY_WORKER_EXITED);
    setTimeout(() => { if (!this.stopping) void this.spawn(w.index); }, delay);
  }

  /** Resolves once every live worker routes new traffic to `targets` only (and a canary's share to its own). */
  async setRoute(gen: number | null, targets: Target[], canary?: Canary): Promise<void> {
    const route: Route = { seq: this.route.seq + 1, gen, targets, ...(canary ? { canary } : {}) };
    this.route = route;
    await Promise.all(this.live().map(async (w) => {
      const acked = w.waitFor((m) => m.t === 'routed' && m.seq >= route.seq, ROUTE_ACK_TIMEOUT_MS);
      w.send({ t: 'route', route });
      if (await acked || !w.alive) return;
      // Its replacement starts with the current route, so the switch holds either way.
      this.log.error({ worker: w.index, workerPid: w.child.pid }, 'Proxy worker did not acknowledge a route; replacing it');
      w.child.kill('SIGKILL');
      await w.exited;
    }));
  }

  /**
   * Resolves true once no worker has anything of `gen` in flight, or false at the deadline,
   * after cutting what `gen` still had open.
   */
  async drain(gen: number, timeoutMs: number): Promise<boolean> {
    const live = this.live();
    const results = await Promise.all(live.map((w) => {
      const drained = w.waitFor((m) => m.t === 'drained' && m.gen === gen, timeoutMs);
      w.send({ t: 'drain', gen });
      return drained.then((ok) => ok || !w.alive);
    }));
    if (results.every(Boolean)) return true;
    for (const w of live) w.send({ t: 'cut', gen });
    return false;
  }

  /**
   * Every worker holds new requests from now on. Resolves true once none has anything in flight
   * (a worker that exits meanwhile has nothing), false if `signal` aborts first.
   */
  async hold(signal: AbortSignal): Promise<boolean> {
    this.paused = true;
    const seq = ++this.pauseSeq;
    const idle = await Promise.all(this.live().map((w) => {
      const done = w.waitFor((m) => m.t === 'idle' && m.seq === seq, Infinity, signal);
      w.send({ t: 'pause', seq });
      return done.then((ok) => ok || !w.alive);
    }));
    return !signal.aborted && idle.every(Boolean);
  }

  /** Releases what the workers hold, in order, or (`expired`) answers it 503. Resolves with how much that was. */
  async release(expired: boolean): Promise<number> {
    this.paused = false;
    const seq = ++this.pauseSeq;
    const held = await Promise.all(this.live().map(async (w) => {
      let n = 0;
      const acked = w.waitFor((m) => m.t === 'resumed' && m.seq === seq && ((n = m.held), true), ROUTE_ACK_TIMEOUT_MS);
      w.send({ t: 'resume', seq, expired });
      await acked;
      return n;
    }));
    return held.reduce((a, b) => a + b, 0);
  }

  /** Every worker that may write the access log opens its file again. */
  /** New handshakes use these certificates, on every worker and on any started later. */
  setCerts(pairs: CertPair[]): void {
    this.certs = pairs;
    for (const w of this.live()) w.send({ t: 'certs', pairs });
  }

  /** The ACME HTTP-01 challenges to answer on the plain listeners. */
  /** Resolves once every live worker answers them (the CA may fetch one the moment it is told). */
  async setTokens(tokens: AcmeTokens): Promise<void> {
    this.tokens = tokens;
    const seq = ++this.tokensSeq;
    await Promise.all(this.live().map(async (w) => {
      const acked = w.waitFor((m) => m.t === 'tokens' && m.seq >= seq, ROUTE_ACK_TIMEOUT_MS);
      w.send({ t: 'acme', seq, tokens });
      await acked;
    }));
  }

  reopenAccessLog(): void {
    for (const w of this.live()) w.send({ t: 'reopen' });
  }

  /** Each live worker's view: in-flight work by generation and open connections. */
  async stats(): Promise<Array<{ worker: number; pid: number; stats?: WorkerStats; final: boolean }>> {
    const seq = ++this.statsSeq;
    // A worker that sent its final totals is exiting and would not answer.
    return Promise.all(this.live().filter((w) => !w.final).map(async (w) => {
      let stats: WorkerStats | undefined;
      const got = w.waitFor((m) => {
        if (m.t !== 'stats' || m.seq !== seq) return false;
        stats = m.stats;
        return true;
      }, 2_000);
      w.send({ t: 'stats', seq });
      await got;
      return { worker: w.index, pid: w.child.pid!, stats, final: w.final };
    }));
  }

  /** Workers stop accepting, finish in-flight requests (up to `timeoutMs`) and exit. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    for (const b of this.backoffs) b.cancel();
    await Promise.all(this.live().map(async (w) => {
      w.send({ t: 'stop', timeoutMs });
      const timer = setTimeout(() => w.child.kill('SIGKILL'), timeoutMs + 2_000);
      await w.exited;
      clearTimeout(timer);
    }));
  }

  kill(): void {
    this.stopping = true;
    for (const w of this.live()) w.child.kill('SIGKILL');
  }

  /** Everyone who may hold a route: serving, starting for an upgrade, retiring. */
  private live(): ProxyWorker[] {
    const all = [...this.workers, ...this.pending, ...this.retiring];
    return all.filter((w): w is ProxyWorker => w !== undefined && w.alive);
  }
}
