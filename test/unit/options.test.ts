// The option table, what resolveOptions checks with it, and README.md's Usage table held to it.
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import {
  CONFIG_FLAG, envName, helpText, LOG_LEVELS, OPTIONS, readValue, shownDefault, type AnyOptionDef,
} from '../../src/option-table.js';
import { defaults, resolveOptions, liveOptions, workerConfig, type Options, type OptionsInput } from '../../src/options.js';

const base: OptionsInput = { listen: [{ host: '127.0.0.1', port: 0 }], command: ['node', 'app.js'] };
const resolve = (o: Partial<Options>): Options => resolveOptions({ ...base, ...o });
const def = (flag: string): AnyOptionDef => OPTIONS.find((d) => d.flag === flag)!;

describe("README.md's Usage table", () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('\n## Usage');
  const usage = readme.slice(start, readme.indexOf('\n## ', start + 1));
  // | `-l, --listen <addr>` | (required) | meaning |  (a \| inside a cell is not a separator)
  const rows = usage.split('\n').filter((l) => l.startsWith('| `-'))
    .map((l) => l.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim()));
  const flagOf = (cell: string): string => /--([a-z-]+)/.exec(cell)![1]!;
  const row = (flag: string): string[] | undefined => rows.find(([cell]) => flagOf(cell!) === flag);

  it('has a row for every option, with its short flag and the default the table gives', () => {
    for (const d of OPTIONS) {
      const r = row(d.flag);
      expect(r, `--${d.flag}`).toBeDefined();
      const [cell, dflt] = r!;
      expect(cell, `--${d.flag}`).toMatch(new RegExp(`^\`${d.short ? `-${d.short}, ` : ''}--${d.flag}${d.arg ? ' ' : '`'}`));
      const shown = shownDefault(d);
      if (shown !== undefined) expect(dflt!.replaceAll('`', ''), `default of --${d.flag}`).toBe(shown);
      else expect(dflt, `--${d.flag} has no default to show`).toMatch(/^(\(.*\))?$/);
      for (const c of d.type.choices ?? []) expect(r!.join(' '), `--${d.flag} names ${c}`).toMatch(new RegExp(`(?<![\\w-])${c}(?![\\w-])`));
    }
    expect(row(CONFIG_FLAG.flag)).toBeDefined();
  });

  it('has no row for an option the table does not have', () => {
    const known = new Set([...OPTIONS.map((d) => d.flag), CONFIG_FLAG.flag]);
    expect(rows.map(([cell]) => flagOf(cell!)).filter((f) => !known.has(f))).toEqual([]);
  });
});

describe('the option table', () => {
  it('gives each option its own flag, short flag and variable', () => {
    const all = [...OPTIONS, CONFIG_FLAG];
    for (const names of [all.map((d) => d.flag), all.map((d) => envName(d.flag)), all.flatMap((d) => d.short ?? [])]) {
      expect(new Set(names).size).toBe(names.length);
    }
    expect(envName('drain-timeout')).toBe('HOTPROXY_DRAIN_TIMEOUT');
  });

  it('offers exactly the levels pino takes, and pino takes each', () => {
    expect([...LOG_LEVELS].sort()).toEqual([...Object.keys(pino.levels.values), 'silent'].sort());
    for (const level of LOG_LEVELS) expect(() => pino({ level }, { write: () => {} })).not.toThrow();
  });

  it('--help shows each default, choice and variable from the table', () => {
    for (const d of OPTIONS) {
      const h = helpText(d);
      expect(h.startsWith(d.help)).toBe(true);
      expect(h).toContain(`env: ${envName(d.flag)}`);
      const shown = shownDefault(d);
      if (shown !== undefined) expect(h).toContain(`default: ${shown}`);
      else expect(h).not.toContain('default:');
      if (d.type.choices) expect(h).toContain(`one of: ${d.type.choices.join(', ')}`);
    }
    expect(shownDefault(def('drain-timeout'))).toBe('30s');
    expect(shownDefault(def('health-interval'))).toBe('50ms');
    expect(shownDefault(def('ready-delay'))).toBe('tcp mode: 1s');
    expect(shownDefault(def('trust-proxy'))).toBeUndefined();
  });

  it('reads texts: durations, counts, lists (repeated and comma-separated), the last of a repeated scalar', () => {
    expect(readValue(def('drain-timeout'), ['250'])).toBe(250);
    expect(readValue(def('drain-timeout'), ['1.5s'])).toBe(1500);
    expect(readValue(def('drain-timeout'), ['2m'])).toBe(120_000);
    expect(readValue(def('workers'), ['1', '3'])).toBe(3);
    expect(readValue(def('listen'), ['8080,127.0.0.1:8081', '[::1]:8082', '/tmp/s.sock', 'fd:3'])).toEqual([
      { host: '0.0.0.0', port: 8080 }, { host: '127.0.0.1', port: 8081 }, { host: '::1', port: 8082 }, { path: '/tmp/s.sock' }, { fd: 3 },
    ]);
    expect(readValue(def('trust-proxy'), ['10.0.0.0/8, ::1'])).toEqual(['10.0.0.0/8', '::1']);
    expect(() => readValue(def('drain-timeout'), ['soon'])).toThrow('--drain-timeout: "soon" is not a duration (e.g. 500ms, 30s, 2m)');
    expect(() => readValue(def('workers'), ['two'])).toThrow('--workers: "two" is not a whole number');
    expect(() => readValue(def('log-level'), ['bogus'])).toThrow('--log-level must be one of trace, debug, info, warn, error, fatal, silent (got "bogus")');
  });
});

describe('resolveOptions', () => {
  it('fills in the defaults of the table', () => {
    const o = resolve({});
    const { tcpReadyDelayMs: _, ...table } = defaults;
    expect(o).toMatchObject(table);
    expect(o).toMatchObject({ mode: 'http', engine: 'raw', workers: 1, drainTimeoutMs: 30_000, keepAliveTimeoutMs: 65_000, logLevel: 'info', trustProxy: [] });
    expect(o.readyDelayMs).toBeUndefined();
    expect(resolve({ mode: 'tcp' }).readyDelayMs).toBe(defaults.tcpReadyDelayMs);
    expect(resolve({ mode: 'tcp', healthCmd: 'true' }).readyDelayMs).toBeUndefined();
  });

  it('checks the log level, as pino would otherwise throw in every process', () => {
    expect(() => resolve({ logLevel: 'bogus' })).toThrow(UsageError);
    expect(() => resolve({ logLevel: 'bogus' })).toThrow(/^--log-level must be one of trace, debug, info, warn, error, fatal, silent \(got "bogus"\)$/);
    for (const level of LOG_LEVELS) expect(resolve({ logLevel: level }).logLevel).toBe(level);
  });

  // Values a programmatic caller can pass, which no text parser saw.
  const bad: Array<[string, Partial<Options>, RegExp]> = [
    ['no workers', { workers: 0 }, /--workers must be a whole number of at least 1 \(got 0\)/],
    ['a fraction of a worker', { workers: 1.5 }, /--workers must be a whole number/],
    ['thousands of workers', { proxyWorkers: 5000 }, /--proxy-workers must be at most 1024/],
    ['a negative timeout', { drainTimeoutMs: -1 }, /--drain-timeout must be a positive duration/],
    ['a timeout setTimeout cannot hold', { upgradeTimeoutMs: 2 ** 31 }, /--upgrade-timeout must be at most 35791m/],
    ['a header timeout over Node\'s requestTimeout', { headerTimeoutMs: 600_000 }, /--header-timeout must be at most 5m \(got 10m\)/],
    ['a negative ready delay', { readyDelayMs: -1 }, /--ready-delay must be a duration/],
    ['a health path without /', { healthPath: 'health' }, /--health-path must start with \//],
    ['a health path Node cannot send', { healthPath: '/a b' }, /--health-path must be a request path without spaces or control characters/],
    ['an empty health command', { healthCmd: '' }, /--health-cmd must not be empty/],
    ['an empty runtime dir', { runtimeDir: '' }, /--runtime-dir must not be empty/],
    ['a control socket path too long', { control: `/tmp/${'c'.repeat(200)}` }, /--control: socket path .* is 205 bytes; at most \d+ fit/],
    ['a listen host that is a name', { listen: [{ host: 'example.com', port: 80 }] }, /bad --listen address "example\.com:80": "example\.com" is not an IP address/],
    ['a listen port out of range', { listen: [{ host: '127.0.0.1', port: 70000 }] }, /port must be 0-65535/],
    ['a listen path too long', { listen: [{ path: `/tmp/${'l'.repeat(200)}` }] }, /--listen: socket path/],
    ['a listen that is not a list', { listen: '8080' as never }, /--listen must be a list/],
    ['metrics on a socket from systemd', { metrics: { fd: 3 } as never }, /--metrics takes an address or a socket path, not a socket from systemd/],
    ['metrics on a public address', { listen: [{ host: '0.0.0.0', port: 8080 }], metrics: { host: '127.0.0.1', port: 8080 } }, /--metrics must be an address of its own/],
    ['a trust-proxy range without its prefix', { trustProxy: ['10.0.0.0/'] }, /--trust-proxy: bad prefix in "10\.0\.0\.0\/"/],
    ['a trust-proxy range with two prefixes', { trustProxy: ['10.0.0.0/8/16'] }, /--trust-proxy: bad prefix/],
    ['a bad mode', { mode: 'udp' as never }, /--mode must be one of http, tcp \(got "udp"\)/],
    ['a bad log format', { logFormat: 'xml' as never }, /--log-format must be one of json, pretty, auto/],
    ['no command', { command: [] }, /missing backend command/],
    ['an empty access log path', { accessLog: '' }, /--access-log must not be empty/],
    ['an access log in tcp mode', { mode: 'tcp', accessLog: 'stdout' }, /--access-log is for http mode: tcp mode has no requests to log/],
  ];
  for (const [what, o, message] of bad) {
    it(`refuses ${what}`, () => {
      expect(() => resolve(o)).toThrow(UsageError);
      expect(() => resolve(o)).toThrow(message);
    });
  }

  it('takes the edge values', () => {
    expect(resolve({ readyDelayMs: 0, headerTimeoutMs: 300_000, drainTimeoutMs: 35_791 * 60_000 }).readyDelayMs).toBe(0);
    expect(resolve({ healthPath: '/health?full=1' }).healthPath).toBe('/health?full=1');
    expect(resolve({ listen: [{ path: `/tmp/${'p'.repeat(100)}` }, { fdName: 'web' }] }).listen).toHaveLength(2);
    // --metrics listens with net, which looks a name up.
    expect(resolve({ metrics: { host: 'metrics.internal', port: 9090 } }).metrics).toEqual({ host: 'metrics.internal', port: 9090 });
    expect(resolve({ trustProxy: ['10.0.0.0/8', '::1', '0.0.0.0/0'] }).trustProxy).toHaveLength(3);
  });

  it('keeps a default list of its own per call', () => {
    resolve({}).trustProxy.push('10.0.0.1');
    expect(resolve({}).trustProxy).toEqual([]);
  });
});

describe('workerConfig', () => {
  it('is the options a proxy worker needs', () => {
    const o = resolve({ mode: 'tcp', engine: 'node', queueTimeoutMs: 1, headerTimeoutMs: 2, keepAliveTimeoutMs: 3, backendTimeoutMs: 4, trustProxy: ['::1'], logLevel: 'warn', logFormat: 'json' });
    expect(workerConfig(o)).toEqual({
      mode: 'tcp', engine: 'node', queueTimeoutMs: 1, headerTimeoutMs: 2, keepAliveTimeoutMs: 3, backendTimeoutMs: 4, trustProxy: ['::1'], redirectHttps: false, log: { level: 'warn', format: 'json' },
    });
  });

  it('names the access log file by its absolute path, so a worker started later finds the same one; stdout is stdout', () => {
    expect(workerConfig(resolve({ accessLog: 'logs/access.log' })).accessLog).toBe(`${process.cwd()}/logs/access.log`);
    expect(workerConfig(resolve({ accessLog: '/var/log/a.log' })).accessLog).toBe('/var/log/a.log');
    expect(workerConfig(resolve({ accessLog: 'stdout' })).accessLog).toBe('stdout');
    expect(workerConfig(resolve({}))).not.toHaveProperty('accessLog');
  });
});

describe('liveOptions', () => {
  it('are the continuous checks of the serving generation', () => {
    const o = resolve({ liveIntervalMs: 100, healthTimeoutMs: 200, healthFall: 4, healthRise: 5, unhealthyRestartMs: 600 });
    expect(liveOptions(o)).toEqual({ intervalMs: 100, timeoutMs: 200, fall: 4, rise: 5, restartAfterMs: 600 });
  });

  it('are none with --live-interval 0, or in tcp mode with nothing to check with', () => {
    expect(liveOptions(resolve({ liveIntervalMs: 0 }))).toBeUndefined();
    expect(liveOptions(resolve({ mode: 'tcp' }))).toBeUndefined();
    expect(liveOptions(resolve({ mode: 'tcp', healthCmd: 'true' }))).toBeDefined();
  });
});
