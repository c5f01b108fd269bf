// What the machine running the tests has: commands on the PATH, free ports.
import { spawnSync } from 'node:child_process';

export { freePort } from '../../harness/procs.js';

export function installed(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}
