import { isIP } from 'node:net';
import { UsageError } from './errors.js';

/** Where something listens: a unix socket path, or a host and port. */
export type Address = { path: string } | { host: string; port: number };

export function isPath(a: Address): a is { path: string } {
  return 'path' in a;
}

/** `host:port`, `[v6]:port` or the path: the Server::Starter spelling of an address. */
export function formatAddress(a: Address): string {
  if (isPath(a)) return a.path;
  return isIP(a.host) === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/**
 * Parses a --listen value: `8888` (all interfaces), `127.0.0.1:8888`, `[::1]:8888`,
 * `localhost:8888`, or a unix socket path (anything containing a `/`).
 */
export function parseListen(value: string): Address {
  const v = value.trim();
  if (v.includes('/')) return { path: v };
  let host = '0.0.0.0';
  let portText = v;
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(v);
  if (v6) {
    host = v6[1]!;
    portText = v6[2]!;
    if (isIP(host) !== 6) throw new UsageError(`bad --listen address "${value}": "${host}" is not an IPv6 address`);
  } else if (v.includes(':')) {
    const i = v.lastIndexOf(':');
    host = v.slice(0, i);
    portText = v.slice(i + 1);
    if (host === '') host = '0.0.0.0';
    if (host.includes(':')) throw new UsageError(`bad --listen address "${value}": write IPv6 addresses as [addr]:port`);
  }
  if (!/^\d+$/.test(portText)) throw new UsageError(`bad --listen address "${value}": expected PORT, HOST:PORT, [V6]:PORT or a socket path`);
  const port = Number(portText);
  if (port > 65535) throw new UsageError(`bad --listen address "${value}": port must be 0-65535`);
  return { host: host === 'localhost' ? '127.0.0.1' : host, port };
}
