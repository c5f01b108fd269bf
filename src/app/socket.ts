// Where an app should listen: the socket its supervisor handed over (systemd's LISTEN_FDS,
// Server::Starter's SERVER_STARTER_PORT), else $PORT, else a default port.
import { ListenError } from '../errors.js';

export type ListenSource = 'LISTEN_FDS' | 'SERVER_STARTER_PORT' | 'PORT' | 'default';

export type Where =
  | { source: 'LISTEN_FDS' | 'SERVER_STARTER_PORT'; fd: number }
  | { source: 'PORT' | 'default'; port: number; host: string | undefined };

export interface WhereOptions {
  port: number;
  host: string | undefined;
  env: NodeJS.ProcessEnv;
  pid: number;
}

/** systemd passes fds from 3 on; the first is the one a single-socket app serves. */
const SD_LISTEN_FDS_START = 3;

export function whereToListen({ port, host, env, pid }: WhereOptions): Where {
  // sd_listen_fds: the variables count only when LISTEN_PID names this very process, so a
  // child that inherited them from its parent does not grab the parent's socket.
  if (env.LISTEN_FDS !== undefined && env.LISTEN_PID !== undefined && Number(env.LISTEN_PID) === pid) {
    const n = Number(env.LISTEN_FDS);
    if (!Number.isInteger(n) || n < 0) throw new ListenError(`LISTEN_FDS is not a count of fds: '${env.LISTEN_FDS}'`);
    if (n > 0) return { source: 'LISTEN_FDS', fd: SD_LISTEN_FDS_START };
  }
  const starter = env.SERVER_STARTER_PORT;
  if (starter) {
    // `<addr>=<fd>` entries joined by ';'; an address may itself hold '=' (a path), so the
    // fd is what follows the last one.
    const first = starter.split(';')[0]!;
    const fd = first.slice(first.lastIndexOf('=') + 1);
    if (!first.includes('=') || !/^\d+$/.test(fd)) throw new ListenError(`SERVER_STARTER_PORT has no fd in '${first}' (expected <addr>=<fd>)`);
    return { source: 'SERVER_STARTER_PORT', fd: Number(fd) };
  }
  // hotproxy --backend port-env picked a loopback port for us: binding every interface would
  // let other hosts reach the app around the proxy.
  const underProxy = env.HOTPROXY_GENERATION !== undefined ? '127.0.0.1' : undefined;
  if (env.PORT !== undefined && env.PORT !== '') {
    if (!/^\d+$/.test(env.PORT) || Number(env.PORT) > 65535) throw new ListenError(`PORT is not a port number: '${env.PORT}'`);
    return { source: 'PORT', port: Number(env.PORT), host: host ?? underProxy };
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ListenError(`not a port number: ${port}`);
  return { source: 'default', port, host };
}

/**
 * What an inherited socket is bound to, as its supervisor named it. Node cannot tell for a
 * unix socket it adopted by fd (`server.address()` is null), but Server::Starter names it.
 */
export function inheritedAddress(env: NodeJS.ProcessEnv, fd: number): string {
  for (const entry of (env.SERVER_STARTER_PORT ?? '').split(';')) {
    const i = entry.lastIndexOf('=');
    if (i > 0 && entry.slice(i + 1) === String(fd)) return entry.slice(0, i);
  }
  return `fd://${fd}`;
}

export function describeWhere(w: Where): string {
  if ('fd' in w) return `inherited fd ${w.fd} (${w.source})`;
  return `${w.host ?? '*'}:${w.port} (${w.source === 'PORT' ? '$PORT' : 'default port'})`;
}
