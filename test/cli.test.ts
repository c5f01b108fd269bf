import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { envName, OPTIONS } from '../src/option-table.js';
import { CLI, NODE_APP, ROOT } from './helpers/hotproxy.js';
import { isAlive } from './helpers/wait.js';
import { BACKEND_STARTED } from '../src/messages.js';

const RUNUSER = '/usr/sbin/runuser';

function run(args: readonly string[], runAs?: string, env: NodeJS.ProcessEnv = {}): { status: number | null; stderr: string; stdout: string } {
  const argv = [CLI, ...args];
  const opts = { cwd: ROOT, encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } } as const;
  const r = runAs
    ? spawnSync(RUNUSER, ['-u', runAs, '--', process.execPath, ...argv], opts)
    : spawnSync(process.execPath, argv, opts);
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

/** Nothing half-started: no process it logged is alive and its runtime directory is gone. */
function expectNothingLeft(r: { stdout: string }, runtimeParent: string): void {
  const pids = [...r.stdout.matchAll(/"(?:workerPid|backendPid)":(\d+)/g)].map((m) => Number(m[1]));
  expect(pids.filter(isAlive)).toEqual([]);
  expect(readdirSync(runtimeParent)).toEqual([]);
}

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'hp-cli-test-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function expectOneLineError(r: { stderr: string }, pattern: RegExp): void {
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^hotproxy: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
}

describe('bad input', () => {
  const cases: Array<[string, string[], number, RegExp]> = [
    ['an unknown flag', ['--bogus', '--listen', '0', '--', ...NODE_APP], 2, /unknown option '--bogus'/],
    ['no command', ['--listen', '0'], 2, /missing backend command/],
    ['no --listen', ['--', ...NODE_APP], 2, /at least one --listen/],
    ['a bad --listen', ['--listen', 'nonsense:port', '--', ...NODE_APP], 2, /bad --listen address "nonsense:port"/],
    ['a port out of range', ['--listen', '70000', '--', ...NODE_APP], 2, /port must be 0-65535/],
    ['a command that does not exist', ['--listen', '0', '--', 'no-such-command-hotproxy'], 2, /command not found: no-such-command-hotproxy/],
    ['a command path that does not exist', ['--listen', '0', '--', '/nonexistent/app'], 2, /command not found or not executable: \/nonexistent\/app$/],
    ['a command that is not executable', ['--listen', '0', '--', './package.json'], 2, /command not found or not executable: \.\/package\.json$/],
    ['--workers 0', ['--listen', '0', '--workers', '0', '--', ...NODE_APP], 2, /--workers must be a whole number of at least 1/],
    ['a non-numeric timeout', ['--listen', '0', '--drain-timeout', 'soon', '--', ...NODE_APP], 2, /--drain-timeout: "soon" is not a duration/],
    ['a bad --mode', ['--listen', '0', '--mode', 'udp', '--', ...NODE_APP], 2, /--mode must be one of http, tcp \(got "udp"\)/],
    // Each of these reached pino, Node or libuv unchecked: a stack trace, an exit 1 after
    // backends had started, or a socket bound under a name cut short.
    ['a bad --log-level', ['--listen', '0', '--log-level', 'bogus', '--', ...NODE_APP], 2, /--log-level must be one of trace, debug, info, warn, error, fatal, silent \(got "bogus"\)/],
    ['a --health-path with a space', ['--listen', '0', '--health-path', '/a b', '--', ...NODE_APP], 2, /--health-path must be a request path without spaces/],
    ['a --header-timeout over Node\'s limit', ['--listen', '0', '--engine', 'node', '--header-timeout', '10m', '--', ...NODE_APP], 2, /--header-timeout must be at most 5m \(got 10m\)/],
    ['a timeout over the timer limit', ['--listen', '0', '--queue-timeout', '40000m', '--', ...NODE_APP], 2, /--queue-timeout must be at most 35791m/],
    ['a --listen host that is a name', ['--listen', 'example.invalid:0', '--', ...NODE_APP], 2, /"example\.invalid" is not an IP address/],
    ['a socket path too long for a unix socket', ['--listen', `/tmp/${'x'.repeat(120)}`, '--', ...NODE_APP], 2, /socket path \/tmp\/x+ is 125 bytes; at most \d+ fit/],
    ['an empty --control', ['--listen', '0', '--control', '', '--', ...NODE_APP], 2, /--control must not be empty/],
    ['a runtime dir that cannot be written', ['--listen', '0', '--runtime-dir', '/proc', '--', ...NODE_APP], 1, /cannot create a runtime directory in \/proc/],
    ['an --access-log in a directory that does not exist', ['--listen', '0', '--access-log', '/nonexistent/access.log', '--', ...NODE_APP], 2,
      /^hotproxy: --access-log \/nonexistent\/access\.log cannot be written: ENOENT: no such file or directory/],
    ['an --access-log that is a directory', ['--listen', '0', '--access-log', '/tmp', '--', ...NODE_APP], 2, /--access-log \/tmp cannot be written: EISDIR/],
    ['an --access-log in tcp mode', ['--listen', '0', '--mode', 'tcp', '--access-log', 'stdout', '--', ...NODE_APP], 2, /--access-log is for http mode: tcp mode has no requests to log/],
  ];
  for (const [what, args, status, pattern] of cases) {
    it(`${what} gives one line on stderr and exit ${status}`, () => {
      // A --runtime-dir of its own, so a half-started instance would show there.
      const r = run(['--runtime-dir', dir, ...args]);
      expect(r.status).toBe(status);
      expectOneLineError(r, pattern);
      expect(r.stdout).not.toContain(BACKEND_STARTED);
      expectNothingLeft(r, dir);
    });
  }

  it('a port in use gives one line on stderr and exit 1', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const r = run(['--runtime-dir', dir, '--listen', `127.0.0.1:${port}`, '--', ...NODE_APP]);
      expect(r.status).toBe(1);
      expectOneLineError(r, new RegExp(`cannot listen on 127.0.0.1:${port}: address already in use`));
      expectNothingLeft(r, dir);
    } finally {
      blocker.close();
    }
  });

  it('a privileged port without privileges gives one line on stderr and exit 1', ({ skip }) => {
    if (process.getuid?.() !== 0 || spawnSync(RUNUSER, ['-u', 'nobody', '--', 'true']).status !== 0) skip('needs root and runuser to run as nobody');
    const unprivilegedFrom = Number(spawnSync('sysctl', ['-n', 'net.ipv4.ip_unprivileged_port_start'], { encoding: 'utf8' }).stdout.trim() || 1024);
    if (unprivilegedFrom <= 80) skip('port 80 needs no privileges here (net.ipv4.ip_unprivileged_port_start)');
    chownSync(dir, 65534, 65534); // a runtime dir nobody may use, so the listener is what fails
    const r = run(['--runtime-dir', dir, '--listen', '127.0.0.1:80', '--', ...NODE_APP], 'nobody');
    expect(r.status).toBe(1);
    expectOneLineError(r, /cannot listen on 127\.0\.0\.1:80: permission denied \(ports below 1024 need privileges\)$/);
    expectNothingLeft(r, dir);
  });

  it('a command whose interpreter is missing fails at once with exit 1, not at --deploy-timeout', () => {
    const app = join(dir, 'app');
    writeFileSync(app, '#!/nonexistent/interpreter\n');
    chmodSync(app, 0o755);
    const runtime = mkdtempSync(join(tmpdir(), 'hp-cli-test-'));
    try {
      const t0 = Date.now();
      const r = run(['--runtime-dir', runtime, '--listen', '127.0.0.1:0', '--', app]);
      expect(Date.now() - t0).toBeLessThan(10_000); // the default --deploy-timeout is 30 s
      expect(r.status).toBe(1);
      expectOneLineError(r, /the first generation did not start: backend \d+ exited with code 127 \(command not found\?\) before it was healthy$/);
      expectNothingLeft(r, runtime);
    } finally {
      rmSync(runtime, { recursive: true, force: true });
    }
  });

  // The same check and message whichever source the value came from (test/config.test.ts has the others).
  it('--log-level bogus from the flag, HOTPROXY_LOG_LEVEL or the config file gives one line on stderr and exit 2', () => {
    const config = join(dir, 'level.json');
    writeFileSync(config, JSON.stringify({ listen: ['0'], 'log-level': 'bogus', command: NODE_APP }));
    const level = /--log-level must be one of trace, debug, info, warn, error, fatal, silent \(got "bogus"\)/;
    for (const [args, env, from] of [
      [['--log-level', 'bogus', '--listen', '0', '--', ...NODE_APP], {}, /^hotproxy: --log-level/],
      [['--listen', '0', '--', ...NODE_APP], { HOTPROXY_LOG_LEVEL: 'bogus' }, /^hotproxy: HOTPROXY_LOG_LEVEL: /],
      [['--config', config], {}, /^hotproxy: .*level\.json: /],
    ] as const) {
      const r = run(['--runtime-dir', dir, ...args], undefined, env);
      expect(r.status).toBe(2);
      expectOneLineError(r, level);
      expect(r.stderr).toMatch(from);
      expect(r.stdout).toBe('');
    }
  });

  it('--help and --version exit 0', () => {
    const help = run(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/kill -HUP/);
    // Every option of the table, with its variable (the wording is test/unit/options.test.ts's).
    const text = help.stdout.replace(/\s+/g, ' ');
    for (const d of OPTIONS) expect(text).toContain(`--${d.flag} ${d.arg}`);
    for (const d of OPTIONS) expect(text).toContain(`env: ${envName(d.flag)}`);
    expect(text).toContain('--drain-timeout <duration> how long in-flight requests may take, and then the exit after SIGTERM (default: 30s; env: HOTPROXY_DRAIN_TIMEOUT)');
    expect(run(['--version']).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('each control command documents its flags in --help, and a bad one points there', () => {
    const flags: Record<string, string[]> = {
      reload: ['--env <KEY=VALUE>', '[-- <command> [args...]]'],
      pause: ['--max-pause <d>', '30s'],
      resume: [], status: [], upgrade: [], stop: [],
    };
    for (const [cmd, own] of Object.entries(flags)) {
      const help = run([cmd, '--help']);
      expect(help.status, cmd).toBe(0);
      for (const f of ['--control <path>', '--pid-file <path>', '--runtime-dir <dir>', '--json', ...own]) expect(help.stdout, `${cmd} ${f}`).toContain(f);
    }
    expect(run(['--help']).stdout).toContain('hotproxy pause [--max-pause 30s] | resume');
    const bad = run(['pause', '--max-pause', 'soon']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe('hotproxy: --max-pause: "soon" is not a duration (e.g. 500ms, 30s, 2m) (see hotproxy pause --help)\n');
    const env = run(['reload', '--env', 'NOVALUE', '--', 'node', 'app.js']);
    expect(env.status).toBe(2);
    expect(env.stderr).toBe('hotproxy: --env: "NOVALUE" is not KEY=VALUE (see hotproxy reload --help)\n');
  });
});
