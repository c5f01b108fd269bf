// systemd socket activation: listening sockets passed in as fds 3.. with LISTEN_FDS,
// LISTEN_PID and LISTEN_FDNAMES (sd_listen_fds(3)). The variables are removed from our
// environment once read, so no backend mistakes systemd's sockets for its own.
import { readFileSync, readlinkSync } from 'node:fs';

export interface InheritedSocket {
  fd: number;
  /** FileDescriptorName=, or "unknown" as systemd says when none was given. */
  name: string;
}

const FIRST_FD = 3;

export function takeInheritedSockets(env: NodeJS.ProcessEnv = process.env, pid = process.pid): InheritedSocket[] {
  const count = passedCount(env, pid);
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  return Array.from({ length: count }, (_, i) => ({ fd: FIRST_FD + i, name: names[i] || 'unknown' }));
}

/** Whether systemd passed sockets to this process (checked before they are taken). */
export function activationPresent(env: NodeJS.ProcessEnv = process.env): boolean {
  return passedCount(env, process.pid) > 0;
}

/** How many sockets LISTEN_FDS passes to `pid` (0 when they were meant for another process). */
function passedCount(env: NodeJS.ProcessEnv, pid: number): number {
  const count = Number(env.LISTEN_FDS);
  const forUs = env.LISTEN_PID === undefined || Number(env.LISTEN_PID) === pid;
  return forUs && Number.isInteger(count) && count > 0 ? count : 0;
}

/**
 * The path a listening unix socket fd is bound to, from /proc/net/unix by inode; Node's pipe
 * handles have no getsockname. Undefined when unknown (abstract or unnamed sockets).
 */
export function unixSocketPath(fd: number): string | undefined {
  try {
    const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1];
    if (!inode) return undefined;
    for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[6] === inode && f[7]?.startsWith('/')) return f[7];
    }
  } catch { /* not Linux, or /proc not mounted */ }
  return undefined;
}
