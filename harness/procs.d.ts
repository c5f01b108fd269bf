import type { ChildProcess } from 'node:child_process';

export interface ProcOptions {
  /** For error messages; the command's base name by default. */
  name?: string;
  cwd?: string;
  /** Added to this process's environment; an undefined value removes a variable. */
  env?: NodeJS.ProcessEnv;
  /** Keep all of stdout in `stdout` (lines are passed to onLine handlers either way). */
  keepStdout?: boolean;
  /** Its own process group, so that the group can be signalled. */
  detached?: boolean;
  /** How much of the stderr tail to keep, in characters; 4000 by default. */
  stderrMax?: number;
}

export declare class Proc {
  constructor(cmd: string, args: string[], opts?: ProcOptions);
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number | undefined;
  readonly stdout: string;
  readonly stderr: string;
  /** The exit code, or the signal that ended it, or the spawn error; undefined while running. */
  readonly exitCode: number | string | undefined;
  /** True once it exited and all its output was read. */
  readonly outputDone: boolean;
  readonly exited: Promise<number | string>;
  /** Resolves once it exited and all its output was read. */
  readonly closed: Promise<void>;
  readonly alive: boolean;
  onLine(fn: (line: string) => void): void;
  signal(sig: NodeJS.Signals): void;
  /** SIGTERM, SIGKILL after `graceMs`; resolves with the pids of descendants that had to be killed. */
  stop(graceMs?: number): Promise<number[]>;
}

export declare function stopAll(graceMs?: number): Promise<void>;
export declare function killAllSync(): void;

export declare function isAlive(pid: number): boolean;
export declare function descendants(pid: number): { pid: number; start: string }[];
/** utime and stime of the pids, in µs. */
export declare function cpuTimes(pids: number[]): { user: number; system: number };
/** utime + stime of the pids, in µs. */
export declare function cpuMicros(pids: number[]): number;
export declare function rssKiB(pid: number): number;

export declare function freePort(): Promise<number>;
export declare function waitForPort(port: number, timeoutMs?: number, proc?: Proc): Promise<void>;
export declare function lastWords(stderr: string): string;
export declare function which(name: string): string | undefined;
