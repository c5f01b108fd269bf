// What a generation runs, and the checks made before one starts: at start-up (exit 2) and for
// `hotproxy reload -- <command>` (a failed reload, exit 1, the old generation serving on).
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { UsageError } from '../errors.js';

/** A command and the variables added to hotproxy's own environment for it. */
export interface Release {
  command: string[];
  env: Record<string, string>;
}

/** Set by hotproxy for each backend (socket activation, generation): not the caller's to add. */
export const RESERVED_ENV = ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES', 'SERVER_STARTER_PORT', 'SERVER_STARTER_GENERATION', 'PORT', 'HOTPROXY_GENERATION', 'NOTIFY_SOCKET'];

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Fails early, with one line, when the backend command cannot be executed at all. */
export function checkCommand(cmd: string, path = process.env.PATH): void {
  if (cmd.includes('/')) {
    if (!isExecutable(cmd)) throw new UsageError(`command not found or not executable: ${cmd}`, 'E_COMMAND_NOT_FOUND');
    return;
  }
  for (const dir of (path ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, cmd))) return;
  }
  throw new UsageError(`command not found: ${cmd}`, 'E_COMMAND_NOT_FOUND');
}

/** A release that can start: a command that exists (on its own PATH, if it sets one) and variables it may set. */
export function checkRelease(r: Release): void {
  if (!Array.isArray(r.command) || r.command.length === 0 || !r.command.every((a) => typeof a === 'string')) {
    throw new UsageError('the command must be a non-empty list of strings');
  }
  if (typeof r.env !== 'object' || r.env === null || Array.isArray(r.env)) throw new UsageError('--env must be a set of KEY=VALUE');
  for (const [k, v] of Object.entries(r.env)) {
    if (!ENV_NAME.test(k)) throw new UsageError(`--env ${k}: not a variable name`);
    if (RESERVED_ENV.includes(k)) throw new UsageError(`--env ${k}: hotproxy sets it for each backend`);
    if (typeof v !== 'string') throw new UsageError(`--env ${k}: the value must be a string`);
  }
  checkCommand(r.command[0]!, r.env.PATH ?? process.env.PATH);
}

/** `KEY=VALUE` texts (repeatable --env) to variables; the last of a key wins. */
export function parseEnv(texts: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const t of texts) {
    const i = t.indexOf('=');
    if (i <= 0) throw new UsageError(`--env: "${t}" is not KEY=VALUE`);
    env[t.slice(0, i)] = t.slice(i + 1);
  }
  return env;
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}
