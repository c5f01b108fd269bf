import { isIP } from 'node:net';
import { UsageError } from './errors.js';

/** Where something listens: a unix socket path, or a host and port. */
export type Address = { path: string } | { host: string; port: number };

/** A socket passed in by systemd (LISTEN_FDS), named by its fd number or its FileDescriptorName. */
export type Inherited = { fd: number } | { fdName: string };

/** What a --listen value asks for: an address to bind, or a socket systemd already bound. */
export type ListenSpec = Address | Inherited;

export function isInherited(s: ListenSpec): s is Inherited {
  return 'fd' in s || 'fdName' in s;
}

export function formatListen(s: ListenSpec): string {
  if ('fd' in s) return `fd:${s.fd}`;
  if ('fdName' in s) return `fdname:${s.fdName}`;
  return formatAddress(s);
}

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
 * `localhost:8888`, a unix socket path (anything containing a `/`), or a socket from systemd:
 * `fd:3`, `fdname:web`.
 */
export function parseListen(value: string): ListenSpec {
  const v = value.trim();
  const sd = /^(fd|fdname):(.*)$/.exec(v);
  if (sd) {
    if (sd[1] === 'fdname') {
      if (!/^[\x21-\x7e]+$/.test(sd[2]!) || sd[2]!.includes(':')) throw new UsageError(`bad --listen address "${value}": fdname:NAME needs a name`);
      return { fdName: sd[2]! };
    }
    if (!/^\d+$/.test(sd[2]!) || Number(sd[2]) < 3) throw new UsageError(`bad --listen address "${value}": fd:N needs a number of 3 or more`);
    return { fd: Number(sd[2]) };
  }
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
