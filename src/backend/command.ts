import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { UsageError } from '../errors.js';

/** Fails early, with one line, when the backend command cannot be executed at all. */
export function checkCommand(cmd: string): void {
  if (cmd.includes('/')) {
    if (!isExecutable(cmd)) throw new UsageError(`command not found or not executable: ${cmd}`, 'E_COMMAND_NOT_FOUND');
    return;
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, cmd))) return;
  }
  throw new UsageError(`command not found: ${cmd}`, 'E_COMMAND_NOT_FOUND');
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}
