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

  it('reload() takes a command and variables; pause() resolves once nothing is in flight, resume() releases', async () => {
    const master = await start(
      { listen: [{ host: '127.0.0.1', port: 0 }], command: ['node', fixture('node-app.js')] },
      createLogger({ level: 'silent', format: 'json' }),
    );
    try {
      const { port } = master.addresses[0] as { port: number };
      const result = await master.reload({ command: ['node', fixture('node-app.js'), 'v2'], env: { APP_RELEASE: 'v2' } });
      expect(result).toMatchObject({ ok: true, gen: 2, command: ['node', fixture('node-app.js'), 'v2'], envKeys: ['APP_RELEASE'] });
      const body = (await (await fetch(`http://127.0.0.1:${port}/env`)).json()) as { argv: string[]; env: Record<string, string> };
      expect(body.argv).toEqual(['v2']);
      expect(body.env.APP_RELEASE).toBe('v2');
      expect(await master.reload({ command: ['no-such-command-hotproxy'] })).toMatchObject({ ok: false, error: 'command not found: no-such-command-hotproxy' });
      expect(await master.pause(10_000)).toMatchObject({ ok: true });
      const held = fetch(`http://127.0.0.1:${port}/seq`);
      await waitFor(async () => (await master.status()).paused?.held === 1, 'the request to be held');
      expect(await master.resume()).toMatchObject({ ok: true, wasPaused: true, held: 1 });
      expect((await held).status).toBe(200);
    } finally {
      await master.stop();
    }
  });

  it('start() rejects with a coded error and starts nothing when the command is missing', async () => {
    await expect(start({ listen: [{ host: '127.0.0.1', port: 0 }], command: ['no-such-command-hotproxy'] }))
      .rejects.toMatchObject({ code: 'E_COMMAND_NOT_FOUND', exitCode: 2 });
  });
});
