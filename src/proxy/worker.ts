// A proxy worker: the replaceable data plane. It serves on the master's listener fds and
// routes as the master says. It never decides routes and never signals backends.
import type { AcmeTokens, CertPair, FromWorker, ToWorker, WorkerConfig } from '../ipc.js';
import { EdgeAnswers } from './edge.js';
import { Engines } from './engines.js';
import { TlsEngine } from './tls/engine.js';
import { createLogger, type Logger } from '../log.js';
import { traffic } from '../metrics/traffic.js';
import type { Engine } from './engine.js';
import { HttpEngine } from './node/engine.js';
import { Inflight } from './inflight.js';
import { RawEngine } from './raw/engine.js';
import { Router } from './router.js';
import { waitUntil } from './wait-until.js';
import { TIMER_MAX_MS } from '../option-types.js';
import { TcpEngine } from './tcp/engine.js';
import { closeHandle, fallbacks, has, internals, NODE_INTERNAL_MISSING, sendHandle } from '../internals/index.js';
import { INTERNALS_PROBED } from '../messages.js';
import { AccessLog } from './access-log.js';

// Signals meant for the master reach this process too when they are sent to the process
// group (a terminal's Ctrl-C or hang-up, `kill -- -PGID`, timeout(1)). The master decides
// what they mean; by default most of them would kill this worker mid-request.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) process.on(sig, () => {});

function send(msg: FromWorker): void {
  if (process.connected) process.send!(msg);
}

let engine: Engines | undefined;
let edge: EdgeAnswers | undefined;
let certs: CertPair[] = [];
let tokens: AcmeTokens = {};
let log: Logger | undefined;
let mode: WorkerConfig['mode'] | undefined;
let accessLog: AccessLog | null = null;
const router = new Router();
const inflight = new Inflight();
router.onSuspect = (target, reason) => send({ t: 'suspect', id: target.id, gen: target.gen, reason });

async function start(config: WorkerConfig): Promise<void> {
  mode = config.mode;
  log = createLogger(config.log).child({ component: 'proxy', worker: config.index });
  log.info({ internals: internals() }, INTERNALS_PROBED);
  for (const f of fallbacks()) log.warn(f, NODE_INTERNAL_MISSING);
  // The raw engine parses with Node's own llhttp binding; without it, the node engine serves.
  // Redirecting everything to https is no job for the fast path: the node engine does it.
  const raw = config.engine === 'raw' && has('http-parser') && !config.redirectHttps;
  // tcp mode has no requests to log.
  if (config.accessLog !== undefined && config.mode === 'http') accessLog = AccessLog.open(config.accessLog, log);
  const plain: Engine = config.mode === 'tcp'
    ? new TcpEngine(router, inflight, config, log)
    : raw
      ? new RawEngine(router, inflight, config, log, accessLog)
      : new HttpEngine(router, inflight, config, log, accessLog);
  const tls = config.tlsFds.length > 0 ? new TlsEngine(router, inflight, config, log, accessLog) : undefined;
  if (tls !== undefined) {
    edge = new EdgeAnswers(config.redirectHttps);
    edge.setTokens(tokens);
    if (plain instanceof HttpEngine || plain instanceof RawEngine) plain.edge = edge;
    tls.setCerts(certs);
  }
  engine = new Engines(plain, tls);
  for (const fd of config.fds) await engine.listen(fd);
  for (const fd of config.tlsFds) await engine.listenTls(fd);
  if (tls !== undefined && edge !== undefined) edge.httpsPort = tls.port() ?? 443;
  send({ t: 'ready' });
}

async function stop(timeoutMs: number): Promise<void> {
  if (engine) await engine.stop(timeoutMs);
  await accessLog?.close();
  process.exit(0);
}

/** Hands a connection to the master, which passes it on to a new worker. */
function handOff(handle: unknown): Promise<void> {
  if (!process.connected) return Promise.reject(new Error('master is gone'));
  return sendHandle(process as never, { t: 'conn' } satisfies FromWorker, handle);
}

async function retire(timeoutMs: number): Promise<void> {
  // What a pause holds is released (or answered 503) when it ends, never cut by a retire; the
  // master ends every pause by --max-pause and allows for it in the retire deadline. The http
  // engines keep a connection whose request is held until it reaches a boundary; tcp mode's
  // retire is a stop, which would close held connections, so it waits for the pause to end.
  const deadline = Date.now() + timeoutMs;
  if (mode === 'tcp') await waitUntil(() => !router.isPaused, TIMER_MAX_MS);
  if (engine) await engine.retire(Math.max(0, deadline - Date.now()), handOff);
  await accessLog?.close();
  // Its totals live on in the master's /metrics, so counters never go backwards.
  if (!process.connected) process.exit(0);
  process.send!({ t: 'final', traffic: traffic.toJSON() } satisfies FromWorker, undefined, {}, () => process.exit(0));
}

process.on('message', (msg: ToWorker, handle?: unknown) => {
  switch (msg.t) {
    case 'config':
      certs = msg.certs;
      tokens = msg.tokens;
      router.set(msg.route);
      if (msg.paused) router.pause();
      start(msg.config).catch((err) => {
        console.error(`hotproxy worker: ${(err as Error).message}`);
        process.exit(1);
      });
      return;
    case 'route': {
      router.set(msg.route);
      engine?.forget(new Set(msg.route.targets.map((t) => t.id)), msg.route.gen);
      const c = msg.route.canary;
      if (c) engine?.forget(new Set(c.targets.map((t) => t.id)), c.gen);
      send({ t: 'routed', seq: msg.route.seq });
      return;
    }
    case 'drain':
      void engine?.drain(msg.gen).then(() => send({ t: 'drained', gen: msg.gen }));
      return;
    case 'cut':
      engine?.cut(msg.gen);
      return;
    case 'stop':
      void stop(msg.timeoutMs);
      return;
    case 'retire':
      void retire(msg.timeoutMs);
      return;
    case 'pause':
      router.pause();
      void inflight.whenAllIdle().then(() => send({ t: 'idle', seq: msg.seq }));
      return;
    case 'resume':
      send({ t: 'resumed', seq: msg.seq, held: msg.expired ? router.expire() : router.resume() });
      return;
    case 'conn':
      if (engine) engine.adopt(handle);
      else closeHandle(handle);
      return;
    case 'certs':
      certs = msg.pairs;
      engine?.setCerts(msg.pairs);
      return;
    case 'acme':
      tokens = msg.tokens;
      edge?.setTokens(msg.tokens);
      send({ t: 'tokens', seq: msg.seq });
      return;
    case 'reopen':
      accessLog?.reopen();
      return;
    case 'stats':
      void (engine?.connections() ?? Promise.resolve(0)).then((connections) => send({
        t: 'stats', seq: msg.seq,
        stats: { inflight: inflight.byGen(), connections, idle: engine?.idleConnections?.() ?? 0, held: router.held, traffic: traffic.toJSON() },
      }));
      return;
  }
});

// The master is gone (it crashed or was SIGKILLed): finish what is in flight and leave, so
// no worker outlives it.
process.on('disconnect', () => void stop(5_000));
