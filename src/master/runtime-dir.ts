import { mkdtempSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuntimeDirError, describe } from '../errors.js';

/**
 * A fresh directory only this user can enter (mkdtemp creates it 0700): the backends'
 * private unix sockets live here, so other local users cannot bypass the proxy.
 */
export function createRuntimeDir(parent = process.env.XDG_RUNTIME_DIR || tmpdir()): string {
  let dir: string;
  try {
    // The master's pid in the name lets `hotproxy status --pid-file` find its control socket.
    dir = mkdtempSync(join(parent, `hotproxy-${process.pid}-`));
  } catch (err) {
    throw new RuntimeDirError(`cannot create a runtime directory in ${parent}: ${describe(err)}`);
  }
  try {
    // Prove now that sockets can be created here, rather than failing mid-deploy (disk full).
    const probe = join(dir, '.probe');
    writeFileSync(probe, '');
    unlinkSync(probe);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new RuntimeDirError(`runtime directory ${dir} is not writable: ${describe(err)}`);
  }
  return dir;
}

export function removeRuntimeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
