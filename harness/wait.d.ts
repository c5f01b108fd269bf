export declare function sleep(ms: number): Promise<void>;

/** Polls `check` until it returns a truthy value or the deadline passes (a throw counts as not yet). */
export declare function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs?: number, intervalMs?: number): Promise<NonNullable<T>>;
