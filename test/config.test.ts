// Settings from a JSON config file and HOTPROXY_* variables, with the command line on top.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NODE_APP, runCli, startHotproxy } from './helpers/hotproxy.js';
import { LISTENING } from '../src/messages.js';

const dir = mkdtempSync(join(tmpdir(), 'hotproxy-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, content: unknown): string => {
  const p = join(dir, name);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
};

describe('config file and environment', () => {
  const config = file('hotproxy.config.json', {
    listen: ['127.0.0.1:0'], mode: 'tcp', 'ready-delay': '100ms', drainTimeout: 5000, command: NODE_APP,
  });

  it('a config file gives the flags and the command; HOTPROXY_* overrides it; the command line overrides both', async () => {
    const fromFile = await startHotproxy(['--config', config], [], { noListen: true });
    expect(fromFile.find(LISTENING)?.mode).toBe('tcp');
    expect(await fromFile.stop()).toBe(0);

    const env = { HOTPROXY_CONFIG: config, HOTPROXY_MODE: 'http', HOTPROXY_LISTEN: '127.0.0.1:0,127.0.0.1:0' };
    const fromEnv = await startHotproxy([], [], { noListen: true, env });
    expect(fromEnv.find(LISTENING)?.mode).toBe('http');
    expect(fromEnv.find(LISTENING)?.listen).toHaveLength(2);
    expect(await fromEnv.stop()).toBe(0);

    const fromCli = await startHotproxy(['--mode', 'tcp', '--ready-delay', '50ms'], [], { noListen: true, env });
    expect(fromCli.find(LISTENING)?.mode).toBe('tcp');
    expect(await fromCli.stop()).toBe(0);
  });

  const bad: Array<[string, string[], NodeJS.ProcessEnv, RegExp]> = [
    ['a missing config file', ['--config', join(dir, 'nope.json')], {}, /cannot read config file .*nope\.json: ENOENT/],
    ['a config file that is not JSON', ['--config', file('bad.json', '{ listen: 8888 ')], {}, /bad\.json is not valid JSON/],
    ['an unknown setting', ['--config', file('unknown.json', { listn: ['8888'] })], {}, /unknown setting "listn"/],
    ['a bad duration in the file', ['--config', file('dur.json', { listen: ['0'], 'drain-timeout': 'soon', command: ['true'] })], {}, /--drain-timeout: "soon" is not a duration/],
    // The same message as for the flag, after the file's name.
    ['a bad choice in the file', ['--config', file('mode.json', { listen: ['0'], mode: 'udp', command: ['true'] })], {}, /mode\.json: --mode must be one of http, tcp \(got "udp"\)/],
    ['a bad value in HOTPROXY_WORKERS', ['--listen', '0', '--', 'true'], { HOTPROXY_WORKERS: 'many' }, /^hotproxy: HOTPROXY_WORKERS: --workers: "many" is not a whole number/],
    ['a bad log level in the file', ['--config', file('level.json', { listen: ['0'], 'log-level': 'bogus', command: ['true'] })], {}, /level\.json: --log-level must be one of trace, debug, info, warn, error, fatal, silent \(got "bogus"\)/],
    ['a bad log level in HOTPROXY_LOG_LEVEL', ['--listen', '0', '--', 'true'], { HOTPROXY_LOG_LEVEL: 'bogus' }, /^hotproxy: HOTPROXY_LOG_LEVEL: --log-level must be one of/],
  ];
  for (const [what, args, env, message] of bad) {
    it(`${what} gives one line on stderr and exit 2`, async () => {
      const r = await runCli(args, env);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
      expect(r.status).toBe(2);
    });
  }
});
