// Every error hotproxy reports on purpose is a HotproxyError with a stable code, so callers
// (the CLI, control clients, tests) branch on `code`, never on message text. All of them live
// here. Errors from the OS (ECONNREFUSED, ECONNRESET, ...) pass through as they are; what a
// proxy failure means to a client is decided in one place, src/proxy/failure.ts.

export type ErrorCode =
  | 'E_USAGE'
  | 'E_COMMAND_NOT_FOUND'
  | 'E_ACCESS_LOG'
  | 'E_LISTEN'
  | 'E_TLS'
  | 'E_ACME'
  | 'E_PID_FILE'
  | 'E_RUNTIME_DIR'
  | 'E_DEPLOY_FAILED'
  | 'E_WORKER_FAILED'
  | 'E_NO_ROUTE'
  | 'E_PAUSE_EXPIRED'
  | 'E_UPSTREAM_CLOSED'
  | 'E_UPSTREAM_PROTOCOL'
  | 'E_UPSTREAM_TIMEOUT'
  | 'E_UPSTREAM_UNHEALTHY'
  | 'E_STOPPING'
  | 'E_CONTROL'
  | 'E_UNSUPPORTED_NODE';

export class HotproxyError extends Error {
  /** Exit status the CLI uses when this error ends the process: 2 = usage, 1 = runtime. */
  readonly exitCode: number = 1;
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class UsageError extends HotproxyError {
  override readonly exitCode = 2;
  constructor(message: string, code: ErrorCode = 'E_USAGE') {
    super(code, message);
  }
}

/** --access-log names a file that cannot be appended to. */
export class AccessLogError extends UsageError {
  constructor(message: string) {
    super(message, 'E_ACCESS_LOG');
  }
}

export class ListenError extends HotproxyError {
  constructor(message: string) {
    super('E_LISTEN', message);
  }
}

/** A --tls-cert/--tls-key pair that cannot serve: unreadable, not PEM, or a key of another certificate. */
export class TlsError extends HotproxyError {
  constructor(message: string) {
    super('E_TLS', message);
  }
}

/** An ACME step failed (account, order, challenge, download); the order is retried with backoff. */
export class AcmeError extends HotproxyError {
  constructor(message: string) {
    super('E_ACME', message);
  }
}

/** --pid-file names a file that belongs to another live process. */
export class PidFileError extends HotproxyError {
  constructor(message: string) {
    super('E_PID_FILE', message);
  }
}

export class RuntimeDirError extends HotproxyError {
  constructor(message: string) {
    super('E_RUNTIME_DIR', message);
  }
}

export class DeployError extends HotproxyError {
  constructor(message: string) {
    super('E_DEPLOY_FAILED', message);
  }
}

/** This Node lacks an internal the master cannot do without (src/internals). */
export class UnsupportedNodeError extends HotproxyError {
  constructor(message: string) {
    super('E_UNSUPPORTED_NODE', message);
  }
}

export class WorkerError extends HotproxyError {
  constructor(message: string) {
    super('E_WORKER_FAILED', message);
  }
}

/** No healthy generation took the request within --queue-timeout. Maps to 503. */
export class NoRouteError extends HotproxyError {
  constructor(message = 'no healthy backend within the queue timeout') {
    super('E_NO_ROUTE', message);
  }
}

/**
 * A request held by `hotproxy pause` until --max-pause passed. The same code as NoRouteError:
 * to the client it is the same 503, no backend took the request in time.
 */
/** A request held by `hotproxy pause` past --max-pause. Maps to 503. */
export class PauseExpiredError extends HotproxyError {
  constructor(message = 'held by a pause past --max-pause') {
    super('E_PAUSE_EXPIRED', message);
  }
}

export class StoppingError extends HotproxyError {
  constructor(message = 'hotproxy is stopping') {
    super('E_STOPPING', message);
  }
}

/** A backend closed its connection before the answer to a request sent on it was complete. */
export class UpstreamClosedError extends HotproxyError {
  constructor(message = 'the backend closed the connection') {
    super('E_UPSTREAM_CLOSED', message);
  }
}

/** A backend's answer broke HTTP/1.1 framing in its body (a bad chunk size line, say). Maps to 502. */
export class UpstreamProtocolError extends HotproxyError {
  constructor(why: string) {
    super('E_UPSTREAM_PROTOCOL', `the backend's answer is malformed: ${why}`);
  }
}

/** A backend stayed silent for --backend-timeout while a request was in flight. Maps to 504. */
export class UpstreamTimeoutError extends HotproxyError {
  constructor(readonly timeoutMs: number) {
    super('E_UPSTREAM_TIMEOUT', `the backend sent nothing for ${timeoutMs} ms`);
  }
}

/**
 * The instance left rotation (it failed its health checks) before it began to answer; the
 * request is sent again elsewhere when that is safe. Maps to 504 when it cannot be.
 */
export class UpstreamUnhealthyError extends HotproxyError {
  constructor(message = 'the backend left rotation before it answered') {
    super('E_UPSTREAM_UNHEALTHY', message);
  }
}

/** `hotproxy reload|status|stop` could not find, reach or understand the running master. */
export class ControlError extends HotproxyError {
  constructor(message: string) {
    super('E_CONTROL', message);
  }
}

/** A one-line, human-readable description of any thrown value (no stack). */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
