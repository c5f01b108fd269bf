export interface LoadResult {
  ok: number;
  failed: number;
  /** Failures of requests sent on a connection that had already served one (keep-alive reuse). */
  failedOnReused: number;
  /** The first 20 failures, as the socket or parser reported them. */
  errors: string[];
  /** Every distinct failure with how often it happened. */
  errorCounts: Map<string, number>;
  /** Responses per backend pid. */
  byPid: Map<number, number>;
  byGen: Map<number, number>;
  /** The slowest request, answered or failed, in ms. */
  maxMs: number;
}

/** A keep-alive HTTP client that never retries and counts every request that does not come back 200. */
export declare class Load {
  /** `timeoutMs`: a request slower than this is given up on and counted as failed (0: never). */
  constructor(url: string, connections?: number, path?: string, opts?: { timeoutMs?: number });
  readonly result: LoadResult;
  /** pid -> performance.now() of its first answer. */
  readonly firstSeen: Map<number, number>;
  /** Responses served so far by a backend pid. */
  servedBy(pid: number): number;
  stop(): Promise<LoadResult>;
}

/** performance.now() of the first answer any of `pids` gave, by a client's `firstSeen`, waiting up to `timeoutMs`. */
export declare function firstAnswer(firstSeen: Map<number, number>, pids: number[], timeoutMs: number): Promise<number | undefined>;
