// Servers nobody here wrote, run behind hotproxy exactly as their docs say to run them on an
// inherited socket. Each test runs when the server is installed and says so when it is not
// (.ci/run installs them from Debian's packages).
import { describe, expect, it } from 'vitest';
import { fixture, startHotproxy } from './helpers/hotproxy.js';
import { Load } from './helpers/load.js';
import { waitFor } from './helpers/wait.js';
import { installed } from './helpers/host.js';
import { DEPLOYED } from '../src/messages.js';


const dir = fixture('third-party');
const servers: Array<[string, string, string[]]> = [
  ['gunicorn --bind fd://3', 'gunicorn', ['gunicorn', '--bind', 'fd://3', '--workers', '2', '--chdir', dir, 'wsgi:app']],
  ['gunicorn on LISTEN_FDS (no --bind)', 'gunicorn', ['gunicorn', '--workers', '2', '--chdir', dir, 'wsgi:app']],
  ['uvicorn --fd 3', 'uvicorn', ['uvicorn', '--fd', '3', '--app-dir', dir, 'asgi:app']],
  ['Starlet through SERVER_STARTER_PORT', 'plackup', ['plackup', '-s', 'Starlet', '-E', 'deployment', '--max-workers', '4', `${dir}/app.psgi`]],
];

describe('third-party servers, unmodified', () => {
  for (const [name, bin, command] of servers) {
    const present = installed(bin);
    if (!present) console.log(`skipped: ${name} (${bin} is not installed)`);
    it.skipIf(!present)(`${name} swaps 5 times under keep-alive load with no failed request`, async () => {
      const hp = await startHotproxy([], command);
      const load = new Load(hp.url, 10);
      await waitFor(() => load.result.ok > 20, 'load to start');
      for (let i = 0; i < 5; i++) {
        const outcome = await hp.reload();
        expect(outcome.msg).toBe(DEPLOYED);
        await waitFor(() => (load.result.byGen.get(outcome.gen as number) ?? 0) > 5, `traffic on generation ${outcome.gen}`);
      }
      const result = await load.stop();
      expect(result.errors).toEqual([]);
      expect(result.failed).toBe(0);
      expect([...result.byGen.keys()].sort()).toEqual([1, 2, 3, 4, 5, 6]);
      expect(await hp.stop()).toBe(0);
      // Nothing the server wrote to stderr looks like a crash.
      expect(hp.logs.filter((l) => l.component === 'backend' && /Traceback|Error:/.test(l.msg))).toEqual([]);
    });
  }
});
