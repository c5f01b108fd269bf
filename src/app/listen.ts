// `import { listen } from 'hotproxy/app'`: serve a Node server on the socket a supervisor
// (hotproxy, systemd, Server::Starter) hands over, or on $PORT when run alone, and drain it
// without resetting a client when a signal asks the process to stop.
import type { AddressInfo } from 'node:net';
import type net from 'node:net';
import { ListenError } from '../errors.js';
import { Drainer, type DrainResult } from './drain.js';
import { describeWhere, inheritedAddress, whereToListen, type ListenSource } from './socket.js';
import { sdNotify } from '../backend/notify-socket.js';

export type { DrainResult } from './drain.js';
export type { ListenSource } from './socket.js';
export { ListenError } from '../errors.js';

/**
 * Sends sd_notify fields ('READY=1', 'STATUS=warming caches') to $NOTIFY_SOCKET: hotproxy
 * logs STATUS= lines and, with --health notify, takes READY=1 as the instance's readiness.
 * Resolves at once when there is no socket to tell.
 */
export function notify(fields: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return sdNotify(fields, env);
}

export interface ListenOptions {
  /** Port when no socket is inherited and $PORT is unset. Default 3000. */
  port?: number;
  /** Host for $PORT or the default port. Default: every interface (loopback under hotproxy). */
  host?: string;
  /** How long a keep-alive connection may sit idle during a drain before it is closed. Default 1000 ms. */
  graceMs?: number;
  /** How long a drain may take; then open connections are cut. Default 10000 ms. */
  drainTimeoutMs?: number;
  /** Signals that start a drain (a second one cuts connections at once). Default SIGTERM, SIGINT; [] for none. */
  signals?: NodeJS.Signals[];
  /**
   * Called when a drain started by a signal is done, instead of exiting. The default exits
   * the process: 0 when every connection closed by itself, 1 when some were cut.
   */
  onDrained?: (result: DrainResult) => unknown;
  /** Environment to read the socket from. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /**
   * Say READY=1 on $NOTIFY_SOCKET (hotproxy --health notify, systemd Type=notify) once
   * listening. Default true; false when the app has more to do first: it calls notify('READY=1').
   */
  ready?: boolean;
}

export interface Listening {
  /**
   * What the server listens on: `server.address()`; for an inherited unix socket, its path as
   * SERVER_STARTER_PORT names it (else `fd://3`).
   */
  address: AddressInfo | string;
  /** Where the socket came from. */
  source: ListenSource;
  /** The inherited fd, if one was used. */
  fd?: number;
  /** Drains as a signal would, without exiting; resolves when every connection is closed. */
  drain(): Promise<DrainResult>;
}

/** Drains still running that will exit the process by default once they are all done. */
const exiting = new Set<Drainer>();
let exitCode = 0;

/** Serves `server` on its inherited socket (or $PORT) and resolves once it listens. */
export async function listen(server: net.Server, options: ListenOptions = {}): Promise<Listening> {
  const env = options.env ?? process.env;
  const where = whereToListen({ port: options.port ?? 3000, host: options.host, env, pid: process.pid });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(Object.assign(new ListenError(`cannot listen on ${describeWhere(where)}: ${err.message}`), { cause: err }));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError).once('listening', onListening);
    // An inherited socket is already listening; listen({ fd }) adopts it without binding.
    server.listen('fd' in where ? { fd: where.fd } : { port: where.port, host: where.host });
  });

  // Under hotproxy --health notify (or systemd's Type=notify), this is the moment it can serve.
  if (options.ready ?? true) await sdNotify('READY=1', env);

  const drainer = new Drainer(server, {
    graceMs: options.graceMs ?? 1000,
    timeoutMs: options.drainTimeoutMs ?? 10_000,
  });
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) { drainer.force(); return; }
    signalled = true;
    if (!options.onDrained) exiting.add(drainer);
    void drainer.drain(signal).then(async (result) => {
      for (const s of signals) process.off(s, onSignal);
      if (options.onDrained) { await options.onDrained(result); return; }
      exiting.delete(drainer);
      if (result.forced) exitCode = 1;
      // With several servers in one process, the last one to finish ends it.
      if (exiting.size === 0) process.exit(exitCode);
    });
  };
  for (const s of signals) process.on(s, onSignal);

  return {
    address: server.address() ?? ('fd' in where ? inheritedAddress(env, where.fd) : ''),
    source: where.source,
    ...('fd' in where ? { fd: where.fd } : {}),
    drain: () => drainer.drain(),
  };
}
