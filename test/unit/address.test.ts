import { describe, expect, it } from 'vitest';
import { formatAddress, formatListen, isInherited, isPath, parseListen, type ListenSpec } from '../../src/address.js';
import { UsageError } from '../../src/errors.js';

function usageError(value: string): UsageError {
  try {
    parseListen(value);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return err as UsageError;
  }
  throw new Error(`parseListen(${JSON.stringify(value)}) did not throw`);
}

describe('parseListen', () => {
  it('a bare port listens on every IPv4 interface', () => {
    expect(parseListen('8888')).toEqual({ host: '0.0.0.0', port: 8888 });
    expect(parseListen(':8888')).toEqual({ host: '0.0.0.0', port: 8888 });
  });

  it('port 0 asks for any free port, and 65535 is the last one', () => {
    expect(parseListen('0')).toEqual({ host: '0.0.0.0', port: 0 });
    expect(parseListen('127.0.0.1:65535')).toEqual({ host: '127.0.0.1', port: 65535 });
  });

  it('HOST:PORT takes an IPv4 address or a name, and localhost means 127.0.0.1', () => {
    expect(parseListen('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseListen('example.internal:80')).toEqual({ host: 'example.internal', port: 80 });
    expect(parseListen('localhost:3000')).toEqual({ host: '127.0.0.1', port: 3000 });
  });

  it('[V6]:PORT is an IPv6 address, brackets off', () => {
    expect(parseListen('[::1]:8888')).toEqual({ host: '::1', port: 8888 });
    expect(parseListen('[::]:80')).toEqual({ host: '::', port: 80 });
    expect(parseListen('[2001:db8::5]:443')).toEqual({ host: '2001:db8::5', port: 443 });
    expect(parseListen('[::ffff:127.0.0.1]:80')).toEqual({ host: '::ffff:127.0.0.1', port: 80 });
  });

  it('anything with a slash is a unix socket path, kept as written', () => {
    expect(parseListen('/run/hotproxy.sock')).toEqual({ path: '/run/hotproxy.sock' });
    expect(parseListen('./app.sock')).toEqual({ path: './app.sock' });
    expect(parseListen('dir/with:colon')).toEqual({ path: 'dir/with:colon' });
  });

  it('surrounding spaces are ignored (values from env and config files)', () => {
    expect(parseListen('  8888 \n')).toEqual({ host: '0.0.0.0', port: 8888 });
    expect(parseListen(' /tmp/x.sock ')).toEqual({ path: '/tmp/x.sock' });
  });

  it('fd:N is a socket systemd passed, from fd 3 on', () => {
    expect(parseListen('fd:3')).toEqual({ fd: 3 });
    expect(parseListen('fd:12')).toEqual({ fd: 12 });
  });

  it('fd:N below 3 (stdin, stdout, stderr), or not a number, is a usage error', () => {
    for (const v of ['fd:0', 'fd:2', 'fd:', 'fd:x', 'fd:-3', 'fd:3.5']) {
      expect(usageError(v).message).toMatch(/fd:N needs a number of 3 or more/);
    }
  });

  it('fdname:NAME is a socket systemd passed by its FileDescriptorName', () => {
    expect(parseListen('fdname:web')).toEqual({ fdName: 'web' });
    expect(parseListen('fdname:web-tls.1')).toEqual({ fdName: 'web-tls.1' });
  });

  it('fdname: with no name, a colon, or spaces is a usage error', () => {
    for (const v of ['fdname:', 'fdname:a:b', 'fdname:a b', 'fdname:é']) {
      expect(usageError(v).message).toMatch(/fdname:NAME needs a name/);
    }
  });

  it('an unbracketed IPv6 address is refused with the way to write it', () => {
    expect(usageError('::1:8888').message).toMatch(/write IPv6 addresses as \[addr\]:port/);
  });

  it('a bracketed address that is not IPv6 is refused', () => {
    expect(usageError('[127.0.0.1]:80').message).toMatch(/"127\.0\.0\.1" is not an IPv6 address/);
    expect(usageError('[nope]:80').message).toMatch(/not an IPv6 address/);
  });

  it('a port past 65535 is refused', () => {
    expect(usageError('65536').message).toMatch(/port must be 0-65535/);
    expect(usageError('127.0.0.1:99999999999').message).toMatch(/port must be 0-65535/);
  });

  it('no port, a port that is not digits, or a bare name is refused, naming the forms that work', () => {
    for (const v of ['', 'localhost', 'host:', '127.0.0.1:http', '80a', '-1', '80 80', '[::1]:', '[::1]']) {
      expect(usageError(v).message).toMatch(/bad --listen address/);
    }
    expect(usageError('localhost').message).toMatch(/expected PORT, HOST:PORT, \[V6\]:PORT or a socket path/);
  });

  it('a usage error exits 2 with code E_USAGE and quotes the value as given', () => {
    const e = usageError(' nope ');
    expect(e.code).toBe('E_USAGE');
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain('" nope "');
  });
});

describe('formatListen and formatAddress', () => {
  it('write each kind the way parseListen reads it back', () => {
    const specs: ListenSpec[] = [
      { host: '0.0.0.0', port: 8888 }, { host: '127.0.0.1', port: 0 }, { host: '::1', port: 443 }, { host: 'example.internal', port: 80 },
      { path: '/run/x.sock' }, { fd: 3 }, { fdName: 'web' },
    ];
    for (const s of specs) expect(parseListen(formatListen(s))).toEqual(s);
  });

  it('bracket IPv6 hosts only', () => {
    expect(formatAddress({ host: '::1', port: 80 })).toBe('[::1]:80');
    expect(formatAddress({ host: '10.0.0.1', port: 80 })).toBe('10.0.0.1:80');
    expect(formatAddress({ path: '/tmp/a.sock' })).toBe('/tmp/a.sock');
    expect(formatListen({ fd: 4 })).toBe('fd:4');
    expect(formatListen({ fdName: 'admin' })).toBe('fdname:admin');
  });

  it('isInherited and isPath tell the kinds apart', () => {
    expect(isInherited({ fd: 3 })).toBe(true);
    expect(isInherited({ fdName: 'x' })).toBe(true);
    expect(isInherited({ path: '/x' })).toBe(false);
    expect(isInherited({ host: 'h', port: 1 })).toBe(false);
    expect(isPath({ path: '/x' })).toBe(true);
    expect(isPath({ host: 'h', port: 1 })).toBe(false);
  });
});
