import { describe, expect, it } from 'vitest';
import { checkRelease, parseEnv } from '../../src/backend/command.js';
import { UsageError } from '../../src/errors.js';

describe('a release for hotproxy reload', () => {
  it('--env KEY=VALUE texts become variables; a value may hold = and be empty; the last of a key wins', () => {
    expect(parseEnv(['A=1', 'URL=http://x/?a=b', 'EMPTY=', 'A=2'])).toEqual({ A: '2', URL: 'http://x/?a=b', EMPTY: '' });
    expect(() => parseEnv(['NOEQUALS'])).toThrow(/"NOEQUALS" is not KEY=VALUE/);
    expect(() => parseEnv(['=x'])).toThrow(UsageError);
  });

  it('a command that exists and variables of its own pass', () => {
    expect(() => checkRelease({ command: ['node', 'app.js'], env: { APP_RELEASE: '42' } })).not.toThrow();
    expect(() => checkRelease({ command: [process.execPath], env: {} })).not.toThrow();
  });

  it('a missing command, a bad name or a variable hotproxy sets is refused with one line', () => {
    expect(() => checkRelease({ command: ['no-such-command-hp'], env: {} })).toThrow(/^command not found: no-such-command-hp$/);
    expect(() => checkRelease({ command: ['/nonexistent/app'], env: {} })).toThrow(/not executable: \/nonexistent\/app/);
    expect(() => checkRelease({ command: [], env: {} })).toThrow(/non-empty list/);
    expect(() => checkRelease({ command: ['node'], env: { '1X': 'a' } })).toThrow(/not a variable name/);
    expect(() => checkRelease({ command: ['node'], env: { LISTEN_FDS: '2' } })).toThrow(/hotproxy sets it/);
  });

  it('the command is looked up on the PATH the release sets, as its shell will', () => {
    expect(() => checkRelease({ command: ['node'], env: { PATH: '/nonexistent' } })).toThrow(/command not found: node/);
  });
});
