// Backends lead their own process groups, so nothing stops them if the master is SIGKILLed.
// The reaper is a tiny awk process that reads "+pgid" / "-pgid" lines from a pipe held by the
// master; when the pipe closes — the master exited, however it died — it SIGTERMs the groups
// still listed, then SIGKILLs them. After a clean stop the list is empty and it just exits.
import { spawn, type ChildProcess } from 'node:child_process';

const PROGRAM = `
/^\\+/ { live[substr($0, 2)] = 1 }
/^-/   { delete live[substr($0, 2)] }
END {
  for (g in live) system("kill -TERM -" g " 2>/dev/null")
  for (i = 0; i < GRACE * 10; i++) {
    left = 0
    for (g in live) if (system("kill -0 -" g " 2>/dev/null") == 0) left = 1
    if (!left) exit
    system("sleep 0.1")
  }
  for (g in live) system("kill -KILL -" g " 2>/dev/null")
}`;

export class Reaper {
  private child: ChildProcess | undefined;

  /** `graceSeconds`: between SIGTERM and SIGKILL when the master is gone. */
  constructor(graceSeconds = 5) {
    try {
      this.child = spawn('awk', ['-v', `GRACE=${graceSeconds}`, PROGRAM], {
        stdio: ['pipe', 'ignore', 'ignore'],
        // Its own group: a terminal's Ctrl-C must not take it down before the master is done.
        detached: true,
      });
      this.child.on('error', () => (this.child = undefined));
      this.child.stdin!.on('error', () => (this.child = undefined));
      this.child.unref();
    } catch {
      this.child = undefined;
    }
  }

  add(pgid: number): void {
    this.child?.stdin!.write(`+${pgid}\n`);
  }

  remove(pgid: number): void {
    this.child?.stdin!.write(`-${pgid}\n`);
  }

  /** Clean exit: everything was stopped already. */
  close(): void {
    this.child?.stdin!.end();
  }
}
