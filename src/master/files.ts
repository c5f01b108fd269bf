// Files other tools read: the pid file (systemd PIDFile=, scripts) and Server::Starter's
// status file. Both are replaced atomically, so a reader never sees half a file. And the
// access log, which the proxy workers write; the master only checks it can be.
import { closeSync, constants, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { AccessLogError, describe, PidFileError } from '../errors.js';

export function writeAtomic(path: string, content: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

export function removeQuietly(path: string | undefined): void {
  if (path) rmSync(path, { force: true });
}

/** The pid a pid file names, or undefined when there is no readable pid in it. */
export function readPid(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Refuses a pid file that names another live process: two masters must not share one. */
export function claimPidFile(path: string): void {
  const pid = readPid(path);
  if (pid !== undefined && pid !== process.pid && isRunning(pid)) {
    throw new PidFileError(`pid file ${path} belongs to running process ${pid}`);
  }
}

/**
 * Fails at start, in one line, when the workers could not append to --access-log (it is
 * created if missing). Non-blocking, so that a FIFO with no reader fails instead of hanging.
 */
export function checkAccessLog(path: string): void {
  try {
    closeSync(openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK, 0o666));
  } catch (err) {
    throw new AccessLogError(`--access-log ${path} cannot be written: ${describe(err)}`);
  }
}

/** Server::Starter's status file: `<generation>:<pid>` lines, sorted. */
export function statusFileContent(entries: Array<{ gen: number; pids: number[] }>): string {
  return entries
    .flatMap((e) => e.pids.map((pid) => ({ gen: e.gen, pid })))
    .sort((a, b) => a.gen - b.gen || a.pid - b.pid)
    .map((e) => `${e.gen}:${e.pid}\n`)
    .join('');
}
