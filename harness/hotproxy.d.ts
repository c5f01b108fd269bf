import type { Proc } from './procs.js';

/** The repository root, with a trailing slash. */
export declare const ROOT: string;
/** The built CLI (dist/cli.js). */
export declare const CLI: string;
export declare function fixture(name: string): string;
/** `node test/fixtures/node-app.js`: answers every request with its pid and generation. */
export declare const NODE_APP: string[];

export interface LogLine {
  msg: string;
  level: number;
  [k: string]: unknown;
}

/** Called with every message find() or waitForLog() is asked for (it may throw). */
export declare function setMessageCheck(check: (msg: string) => void): void;

export declare class Hotproxy {
  constructor(proc: Proc);
  readonly proc: Proc;
  readonly logs: LogLine[];
  /** The first plain --listen port (0: none). */
  port: number;
  /** The first --listen-tls port (0: none). */
  tlsPort: number;
  readonly tlsUrl: string;
  /** Descendants that outlived stop() and had to be killed: leaks. */
  readonly leaked: number[];
  readonly exited: Promise<number | null>;
  readonly pid: number;
  readonly url: string;
  readonly stderr: string;
  readonly alive: boolean;
  /** Null while running and after a signal. */
  readonly exitCode: number | null;
  find(msg: string, pred?: (l: LogLine) => boolean): LogLine | undefined;
  /** Fails at once if hotproxy exited without writing the line. */
  waitForLog(msg: string, pred?: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Every pid hotproxy started: proxy workers and backends. */
  /** Its last `n` log lines (of `minLevel` and above) and stderr, for a failed assertion's message. */
  tail(n?: number, minLevel?: number): string;
  childPids(): number[];
  /** Active backend pids per the last Deployed line. */
  activePids(): number[];
  deployedCount(): number;
  /** Pids of the proxy workers serving now. */
  workerPids(): number[];
  /** The master and the proxy workers serving now: the processes whose CPU is the proxy's cost. */
  proxyPids(): number[];
  signal(sig: NodeJS.Signals): void;
  /** Sends HUP and resolves with the outcome of the deploy it caused (Deployed / Deploy failed). */
  reload(): Promise<LogLine>;
  /** Sends USR2 and resolves with the outcome (Upgraded / Upgrade failed). */
  upgrade(): Promise<LogLine>;
  /** `hotproxy status --json` as the master answers it now; undefined if it cannot be asked. */
  status(timeoutMs?: number): Promise<Record<string, any> | undefined>;
  /** SIGTERM, SIGKILL after `graceMs` (20 s); resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
  /** Processes it started that are still alive. */
  leftovers(): number[];
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  /** Another copy of the built CLI (to change its code on disk before an upgrade). */
  cli?: string;
  /** Don't wait for Ready (for start-up failure tests). */
  noWait?: boolean;
  /** A command that execs hotproxy (systemd-socket-activate …); no --listen is added. */
  wrap?: string[];
  /** Add no --listen (it comes from a config file or the environment). */
  noListen?: boolean;
  /** Pass --proxy-workers and wait until that many report ready. */
  proxyWorkers?: number;
}

export declare function startHotproxy(args: string[], command?: string[], opts?: StartOptions): Promise<Hotproxy>;

/** Stops what still runs of every hotproxy started since the last call; resolves with the pids it had to kill. */
export declare function reapAll(): Promise<number[]>;

/** Waits until no process hotproxy started is alive (it was stopped, not killed). */
export declare function expectNothingLeft(hp: Hotproxy): Promise<void>;

/** Runs the CLI as a deploy script would; stopped after `timeoutMs` if given. */
export declare function runCli(args: string[], env?: NodeJS.ProcessEnv, timeoutMs?: number): Promise<{ status: number | null; stdout: string; stderr: string }>;
