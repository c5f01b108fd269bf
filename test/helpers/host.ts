// What the machine running the tests has: commands on the PATH, free ports.
import { spawnSync } from 'node:child_process';
import net from 'node:net';

export function installed(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** A loopback port nobody listens on right now, for tools that cannot bind port 0 themselves. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
