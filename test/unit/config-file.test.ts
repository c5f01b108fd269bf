// HOTPROXY_* variables and the config file as sources of option texts, and settle()'s
// precedence: the command line, then the variables, then the file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fromEnv, readConfigFile, settle, type Source } from '../../src/config-file.js';
import { UsageError } from '../../src/errors.js';
import { envName, OPTIONS, type AnyOptionDef } from '../../src/option-table.js';

const dir = mkdtempSync(join(tmpdir(), 'hotproxy-unit-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = (content: unknown): string => {
  const p = join(dir, `c${++n}.json`);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
};
const def = (flag: string): AnyOptionDef => OPTIONS.find((d) => d.flag === flag)!;
/** As cli.ts makes it from commander's texts. */
const flags = (given: Record<string, string[]>): Source => new Map(Object.entries(given).map(([f, texts]) => [def(f), { texts: () => texts }]));
const fromFile = (content: unknown): Source => readConfigFile(file(content)).source;

describe('settle', () => {
  it('takes the command line over the variables over the file, option by option', () => {
    const cli = flags({ mode: ['tcp'] });
    const env = fromEnv({ HOTPROXY_MODE: 'http', HOTPROXY_WORKERS: '3', PATH: '/bin' });
    const cfg = fromFile({ mode: 'http', workers: 5, 'drain-timeout': '5s', listen: ['8080', '8081'] });
    expect(settle([cli, env, cfg])).toEqual({
      mode: 'tcp', workers: 3, drainTimeoutMs: 5000, listen: [{ host: '0.0.0.0', port: 8080 }, { host: '0.0.0.0', port: 8081 }],
    });
    expect(settle([new Map(), new Map(), new Map()])).toEqual({});
  });

  it('a list from a stronger source replaces, not extends, a weaker one', () => {
    expect(settle([fromEnv({ HOTPROXY_LISTEN: '1,2' }), fromFile({ listen: ['3'] })]).listen).toEqual([
      { host: '0.0.0.0', port: 1 }, { host: '0.0.0.0', port: 2 },
    ]);
  });

  it('never reads a value a stronger source overrides', () => {
    const cfg = fromFile({ workers: true, 'log-level': 'bogus' });
    expect(settle([flags({ workers: ['2'], 'log-level': ['warn'] }), cfg])).toEqual({ workers: 2, logLevel: 'warn' });
  });
});

describe('--log-level bogus is the same error from every source, after where it was written', () => {
  const message = '--log-level must be one of trace, debug, info, warn, error, fatal, silent (got "bogus")';
  it('from the command line', () => {
    expect(() => settle([flags({ 'log-level': ['bogus'] })])).toThrow(new UsageError(message));
  });
  it('from HOTPROXY_LOG_LEVEL', () => {
    expect(() => settle([fromEnv({ HOTPROXY_LOG_LEVEL: 'bogus' })])).toThrow(new UsageError(`HOTPROXY_LOG_LEVEL: ${message}`));
  });
  it('from the config file', () => {
    const p = file({ 'log-level': 'bogus' });
    expect(() => settle([readConfigFile(p).source])).toThrow(new UsageError(`${p}: ${message}`));
    const camel = file({ logLevel: 'bogus' });
    expect(() => settle([readConfigFile(camel).source])).toThrow(new UsageError(`${camel}: ${message}`));
  });
});

describe('fromEnv', () => {
  it('reads HOTPROXY_<FLAG> for every option, an empty one too', () => {
    for (const d of OPTIONS) expect(fromEnv({ [envName(d.flag)]: 'x' }).has(d), envName(d.flag)).toBe(true);
    expect(() => settle([fromEnv({ HOTPROXY_WORKERS: '' })])).toThrow('HOTPROXY_WORKERS: --workers: "" is not a whole number');
    expect(fromEnv({ HOTPROXY_CONFIG: 'x.json', HOTPROXY: 'x', HOTPROXY_BOGUS: 'x' }).size).toBe(0);
  });
});

describe('readConfigFile', () => {
  it('takes the long flag names and their camelCase, values as on the command line, and the command', () => {
    const { source, command } = readConfigFile(file({ 'drain-timeout': '2s', keepaliveTimeout: 1000, proxyWorkers: '2', 'trust-proxy': '::1', command: ['node', 'app.js'] }));
    expect(settle([source])).toEqual({ drainTimeoutMs: 2000, keepAliveTimeoutMs: 1000, proxyWorkers: 2, trustProxy: ['::1'] });
    expect(command).toEqual(['node', 'app.js']);
    expect(readConfigFile(file({})).command).toBeUndefined();
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['not JSON', '{ listen: 8888 ', /is not valid JSON/],
    ['not an object', '["8888"]', /must hold a JSON object of settings/],
    ['an unknown setting', { listn: ['8888'] }, /unknown setting "listn"/],
    ['"config" in the file', { config: 'other.json' }, /unknown setting "config"/],
    ['"help" in the file', { help: true }, /unknown setting "help"/],
    ['an empty command', { command: [] }, /"command" must be a list of strings/],
    ['a command that is a string', { command: 'node app.js' }, /"command" must be a list of strings/],
  ];
  for (const [what, content, message] of bad) {
    it(`refuses ${what}`, () => expect(() => readConfigFile(file(content))).toThrow(message));
  }

  const badValues: Array<[string, unknown, RegExp]> = [
    ['a boolean', { workers: true }, /"workers" must be a string or number/],
    ['null', { mode: null }, /"mode" must be a string or number/],
    ['a list for one value', { workers: [1, 2] }, /"workers" takes one value, not a list/],
    ['a bad duration', { 'drain-timeout': 'soon' }, /c\d+\.json: --drain-timeout: "soon" is not a duration/],
    ['a bad choice', { mode: 'udp' }, /c\d+\.json: --mode must be one of http, tcp \(got "udp"\)/],
    ['a count out of range', { workers: 0 }, /c\d+\.json: --workers must be a whole number of at least 1 \(got 0\)/],
  ];
  for (const [what, content, message] of badValues) {
    it(`refuses ${what} when the value is used`, () => expect(() => settle([fromFile(content)])).toThrow(message));
  }

  it('names a file it cannot read', () => {
    expect(() => readConfigFile(join(dir, 'nope.json'))).toThrow(/cannot read config file .*nope\.json: ENOENT/);
  });
});
