// One backend process. It is started by fork-exec through /bin/sh so LISTEN_PID can be set
// to its own pid after the fork (systemd's contract), then exec'd into the app — the pid we
// see is the app's. It leads its own process group, so stopping it stops what it forked.
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { formatAddress, isPath, type Address } from '../address.js';
import type { Logger } from '../log.js';
import type { BackendKind } from '../options.js';
import type { Reaper } from './reaper.js';
import { openPrivateSocket } from './socket.js';
import { BACKEND_SIGKILLED, BACKEND_STATUS } from '../messages.js';
import { NotifySocket } from './notify-socket.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface InstanceSpec {
  gen: number;
  index: number;
  attempt: number;
  command: string[];
  /** Added to hotproxy's own environment (hotproxy reload --env). */
  env: Record<string, string>;
  kind: BackendKind;
  runtimeDir: string;
  reaper: Reaper;
  log: Logger;
}

const SHIM = 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"';
/** Variables of our own socket activation (issue: systemd) that must not leak into backends. */
const INHERITED = ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES', 'SERVER_STARTER_PORT', 'SERVER_STARTER_GENERATION', 'PORT'];

export class Instance {
  readonly id: string;
  readonly exited: Promise<ExitInfo>;
  exitInfo: ExitInfo | undefined;
  stopping = false;
  /** Resolves when the app sends READY=1 on its NOTIFY_SOCKET (never, without one). */
  readonly ready: Promise<void>;
  private setReady!: () => void;
  private notify: NotifySocket | undefined;

  private constructor(
    readonly spec: InstanceSpec,
    readonly address: Address,
    private child: ChildProcess,
    private log: Logger,
  ) {
    this.id = `${spec.gen}.${spec.index}.${spec.attempt}`;
    this.ready = new Promise((resolve) => (this.setReady = resolve));
    this.exited = new Promise((resolve) => {
      const done = (info: ExitInfo): void => {
        if (this.exitInfo) return;
        this.exitInfo = info;
        if (isPath(address)) rmSync(address.path, { force: true });
        this.notify?.close();
        resolve(info);
      };
      child.once('exit', (code, signal) => done({ code, signal }));
      child.once('error', () => done({ code: 127, signal: null }));
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  static async start(spec: InstanceSpec): Promise<Instance> {
    const name = `gen${spec.gen}-${spec.index}-${spec.attempt}`;
    const sock = await openPrivateSocket(spec.kind, spec.runtimeDir, name);
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of INHERITED) delete env[k];
    Object.assign(env, spec.env);
    // Bound before the fork, so a READY=1 sent at once is not lost; the events reach the
    // instance once it exists (a datagram is read on a later tick).
    let inst: Instance | undefined;
    const notify = NotifySocket.open(`${spec.runtimeDir}/${name}.notify`, {
      ready: () => inst?.setReady(),
      status: (text) => inst?.log.info({ status: text }, BACKEND_STATUS),
    });
    if (notify) env.NOTIFY_SOCKET = notify.path;
    env.SERVER_STARTER_GENERATION = String(spec.gen);
    env.HOTPROXY_GENERATION = String(spec.gen);
    if (sock.fd === undefined) {
      env.PORT = String((sock.address as { port: number }).port);
    } else {
      env.SERVER_STARTER_PORT = `${formatAddress(sock.address)}=3`;
      // A command that names the fd itself (gunicorn --bind fd://3) is not also told through
      // LISTEN_FDS: gunicorn adds the systemd fds to its fd:// binds and opens fd 3 twice.
      if (!spec.command.some((a) => /(^|=)fd:\/\/3$/.test(a))) {
        env.LISTEN_FDS = '1';
        env.LISTEN_FDNAMES = 'hotproxy';
      }
    }
    let child: ChildProcess;
    try {
      child = spawn('/bin/sh', ['-c', SHIM, 'hotproxy-backend', ...spec.command], {
        stdio: sock.fd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe', sock.fd],
        env,
        detached: true,
      });
    } catch (err) {
      notify?.close();
      throw err;
    } finally {
      sock.release();
    }
    const log = spec.log.child({ component: 'backend', gen: spec.gen, backendPid: child.pid });
    inst = new Instance(spec, sock.address, child, log);
    inst.notify = notify;
    if (child.pid) {
      spec.reaper.add(child.pid);
      // A crash: whatever the app forked cannot serve through us any more; it goes too.
      void inst.exited.then(() => {
        if (inst.stopping) return;
        inst.signal('SIGKILL');
        spec.reaper.remove(child.pid!);
      });
    }
    for (const [name, stream] of [['stdout', child.stdout], ['stderr', child.stderr]] as const) {
      if (stream) createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => log.info({ stream: name }, line));
    }
    return inst;
  }

  /** SIGTERM to the group, then SIGKILL once `timeoutMs` has passed. */
  async stop(timeoutMs: number): Promise<ExitInfo> {
    this.stopping = true;
    if (!this.exitInfo) this.signal('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.log.warn({ timeoutMs }, BACKEND_SIGKILLED(timeoutMs));
        this.signal('SIGKILL');
        resolve();
      }, timeoutMs);
    });
    await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    const info = await this.exited;
    // Whatever the app forked and left behind goes with it.
    this.signal('SIGKILL');
    this.spec.reaper.remove(this.pid);
    return info;
  }

  /** Signals the whole process group; a group that is gone already is not an error. */
  signal(sig: NodeJS.Signals): void {
    if (this.pid <= 0) return;
    try { process.kill(-this.pid, sig); } catch { /* ESRCH: nothing left */ }
  }
}

export function describeExit(info: ExitInfo): string {
  if (info.signal) return `was killed by ${info.signal}`;
  if (info.code === 127) return 'exited with code 127 (command not found?)';
  return `exited with code ${info.code}`;
}
