// sd_notify(3) for Type=notify units: READY=1 once serving, RELOADING=1/READY=1 around a
// deploy, STOPPING=1 on the way out. Node cannot send on a unix datagram socket, so the
// messages go through systemd-notify, which waits on a barrier until systemd has read them;
// the unit needs NotifyAccess=all because the sender is that child, not the master.
import { spawn } from 'node:child_process';
import type { Logger } from '../log.js';

export class Notifier {
  private chain: Promise<void> = Promise.resolve();
  private warned = false;

  private constructor(private readonly socket: string, private readonly log: Logger) {}

  /** A notifier when NOTIFY_SOCKET is set (and removed, so backends do not notify systemd themselves). */
  static fromEnv(log: Logger, env: NodeJS.ProcessEnv = process.env): Notifier | undefined {
    const socket = env.NOTIFY_SOCKET;
    delete env.NOTIFY_SOCKET;
    return socket ? new Notifier(socket, log.child({ component: 'systemd' })) : undefined;
  }

  ready(status: string): Promise<void> {
    return this.send({ READY: '1', STATUS: status, MAINPID: String(process.pid) });
  }

  reloading(): Promise<void> {
    // Type=notify-reload (systemd 253+) wants the monotonic time with RELOADING=1.
    return this.send({ RELOADING: '1', STATUS: 'deploying', MONOTONIC_USEC: String(process.hrtime.bigint() / 1000n) });
  }

  stopping(): Promise<void> {
    return this.send({ STOPPING: '1', STATUS: 'stopping' });
  }

  /** In order, one at a time; a failure is logged once and never stops hotproxy. */
  private send(fields: Record<string, string>): Promise<void> {
    const args = Object.entries(fields).map(([k, v]) => `${k}=${v}`);
    this.chain = this.chain.then(() => new Promise<void>((resolve) => {
      const child = spawn('systemd-notify', args, { stdio: 'ignore', env: { ...process.env, NOTIFY_SOCKET: this.socket } });
      child.once('error', (err) => { this.warnOnce(err.message); resolve(); });
      child.once('exit', (code) => { if (code !== 0) this.warnOnce(`systemd-notify exited with ${code}`); resolve(); });
    }));
    return this.chain;
  }

  private warnOnce(why: string): void {
    if (this.warned) return;
    this.warned = true;
    this.log.warn({ err: why }, 'Cannot notify systemd (is systemd-notify installed?)');
  }
}
