import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { CLI, NODE_APP, ROOT } from './helpers/hotproxy.js';

function run(args: string[]): { status: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

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
    ['--workers 0', ['--listen', '0', '--workers', '0', '--', ...NODE_APP], 2, /--workers must be a whole number of at least 1/],
    ['a non-numeric timeout', ['--listen', '0', '--drain-timeout', 'soon', '--', ...NODE_APP], 2, /--drain-timeout: "soon" is not a duration/],
    ['a bad --mode', ['--listen', '0', '--mode', 'udp', '--', ...NODE_APP], 2, /--mode/],
    ['a runtime dir that cannot be written', ['--listen', '0', '--runtime-dir', '/proc', '--', ...NODE_APP], 1, /cannot create a runtime directory in \/proc/],
  ];
  for (const [what, args, status, pattern] of cases) {
    it(`${what} gives one line on stderr and exit ${status}`, () => {
      const r = run(args);
      expect(r.status).toBe(status);
      expectOneLineError(r, pattern);
      expect(r.stdout).not.toMatch(/Backend started/);
    });
  }

  it('a port in use gives one line on stderr and exit 1', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const r = run(['--listen', `127.0.0.1:${port}`, '--', ...NODE_APP]);
      expect(r.status).toBe(1);
      expectOneLineError(r, new RegExp(`cannot listen on 127.0.0.1:${port}: address already in use`));
    } finally {
      blocker.close();
    }
  });

  it('--help and --version exit 0', () => {
    expect(run(['--help']).status).toBe(0);
    expect(run(['--help']).stdout).toMatch(/kill -HUP/);
    expect(run(['--version']).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
