import { describe, expect, it } from 'vitest';
// The built library, as a user would import it.
import { createLogger, start } from '../dist/index.js';
import { fixture } from './helpers/hotproxy.js';
import { isAlive, waitFor } from './helpers/wait.js';

describe('programmatic API', () => {
  it('start() serves, reload() deploys and stop() leaves nothing running', async () => {
    const master = await start(
      { listen: [{ host: '127.0.0.1', port: 0 }], command: ['node', fixture('node-app.js')] },
      createLogger({ level: 'silent', format: 'json' }),
    );
    try {
      const { port } = master.addresses[0] as { port: number };
      const first = (await (await fetch(`http://127.0.0.1:${port}/`)).json()) as { gen: number };
      expect(first.gen).toBe(1);
      const result = await master.reload();
      expect(result.ok).toBe(true);
      const second = (await (await fetch(`http://127.0.0.1:${port}/`)).json()) as { gen: number };
      expect(second.gen).toBe(2);
      const status = await master.status();
      const active = status.generations.find((g) => g.state === 'active');
      expect(active?.gen).toBe(2);
      const pids = [...active!.pids, ...status.workers.map((w) => w.pid)];
      await master.stop();
      expect(master.state).toBe('stopped');
      await waitFor(() => pids.every((p) => !isAlive(p)), 'processes to exit');
    } finally {
      await master.stop();
    }
  });

  it('start() rejects with a coded error and starts nothing when the command is missing', async () => {
    await expect(start({ listen: [{ host: '127.0.0.1', port: 0 }], command: ['no-such-command-hotproxy'] }))
      .rejects.toMatchObject({ code: 'E_COMMAND_NOT_FOUND', exitCode: 2 });
  });
});
