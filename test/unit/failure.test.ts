import { describe, expect, it } from 'vitest';
import { NoRouteError, PauseExpiredError, StoppingError, UpstreamClosedError, UpstreamTimeoutError, UpstreamUnhealthyError, UsageError } from '../../src/errors.js';
import { bodyFor, isRefused, isRetryable, mayRetry, MAX_ATTEMPTS, statusFor } from '../../src/proxy/failure.js';

/** An error as Node's net or http layer reports it. */
const sys = (code: string): Error => Object.assign(new Error(code), { code });

describe('statusFor (what the client sees when the proxy fails)', () => {
  it('no routable backend, or a proxy that is stopping, is 503', () => {
    expect(statusFor(new NoRouteError())).toBe(503);
    expect(statusFor(new StoppingError())).toBe(503);
    expect(statusFor(new PauseExpiredError())).toBe(503);
  });

  it('a silent backend, or one that left rotation before it answered, is 504', () => {
    expect(statusFor(sys('ETIMEDOUT'))).toBe(504);
    expect(statusFor(new UpstreamTimeoutError(1000))).toBe(504);
    expect(statusFor(new UpstreamUnhealthyError())).toBe(504);
  });

  it('any other failure to get an answer is 502', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ENOENT', 'EPIPE', 'HPE_INVALID_CONSTANT']) expect(statusFor(sys(code))).toBe(502);
    expect(statusFor(new UpstreamClosedError())).toBe(502);
    expect(statusFor(new UsageError('x'))).toBe(502);
    expect(statusFor(new Error('no code'))).toBe(502);
  });

  it('a thrown value that is not an error at all is 502', () => {
    for (const v of [null, undefined, 'text', 42, {}]) expect(statusFor(v)).toBe(502);
  });

  // 503 tells a client it may retry elsewhere; only hotproxy's own errors may say so.
  it('a foreign error that borrows a 503 code is still 502', () => {
    expect(statusFor(sys('E_NO_ROUTE'))).toBe(502);
    expect(statusFor({ code: 'E_STOPPING' })).toBe(502);
  });

  it('each status has its plain-text body', () => {
    expect(bodyFor(502)).toBe('502 Bad Gateway\n');
    expect(bodyFor(503)).toBe('503 Service Unavailable\n');
    expect(bodyFor(504)).toBe('504 Gateway Timeout\n');
  });
});

describe('isRetryable (the backend cannot have seen the request)', () => {
  it('is true for a refused or missing socket and a reused connection that broke', () => {
    for (const code of ['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE']) expect(isRetryable(sys(code))).toBe(true);
    expect(isRetryable(new UpstreamClosedError())).toBe(true);
    expect(isRetryable(new UpstreamUnhealthyError())).toBe(true);
  });

  // A timeout may mean the backend is working on it: sending it again could do it twice.
  it('is false for timeouts, hotproxy\'s own errors, and errors without a code', () => {
    for (const code of ['ETIMEDOUT', 'EACCES', 'HPE_INVALID_CONSTANT']) expect(isRetryable(sys(code))).toBe(false);
    expect(isRetryable(new UpstreamTimeoutError(1000))).toBe(false);
    expect(isRetryable(new NoRouteError())).toBe(false);
    expect(isRetryable(new Error('x'))).toBe(false);
    for (const v of [null, undefined, 'ECONNREFUSED']) expect(isRetryable(v)).toBe(false);
  });
});

describe('isRefused (the backend is not there at all)', () => {
  it('is true for a refused TCP connection and a unix socket that is gone', () => {
    expect(isRefused(sys('ECONNREFUSED'))).toBe(true);
    expect(isRefused(sys('ENOENT'))).toBe(true);
  });

  // A reset can happen on a healthy backend's idle connection: not a reason to skip it.
  it('is false for a reset or broken connection, and for anything without a code', () => {
    for (const code of ['ECONNRESET', 'EPIPE', 'ETIMEDOUT']) expect(isRefused(sys(code))).toBe(false);
    expect(isRefused(new UpstreamClosedError())).toBe(false);
    for (const v of [null, undefined, new Error('ECONNREFUSED')]) expect(isRefused(v)).toBe(false);
  });
});

describe('mayRetry (a resendable request goes again)', () => {
  it('after a broken connection, up to MAX_ATTEMPTS tries in all', () => {
    for (let attempt = 1; attempt < MAX_ATTEMPTS; attempt++) expect(mayRetry(sys('ECONNRESET'), attempt)).toBe(true);
    expect(mayRetry(sys('ECONNRESET'), MAX_ATTEMPTS)).toBe(false);
  });

  // A backend killed mid-request: a reset, then refusals until the master replaced it.
  it('after a refused connection, more tries: it sent nothing and the instance is skipped from then on', () => {
    expect(mayRetry(sys('ECONNREFUSED'), MAX_ATTEMPTS)).toBe(true);
    expect(mayRetry(sys('ENOENT'), 2 * MAX_ATTEMPTS - 1)).toBe(true);
    expect(mayRetry(sys('ECONNREFUSED'), 2 * MAX_ATTEMPTS)).toBe(false);
  });

  // Each try of a silent backend may cost a whole --backend-timeout.
  it('after a backend timeout, once more only', () => {
    expect(mayRetry(new UpstreamTimeoutError(1000), 1)).toBe(true);
    expect(mayRetry(new UpstreamTimeoutError(1000), 2)).toBe(false);
  });

  it('never after an error that says nothing about the connection', () => {
    expect(mayRetry(new Error('x'), 1)).toBe(false);
    expect(mayRetry(sys('HPE_INVALID_CONSTANT'), 1)).toBe(false);
  });
});
