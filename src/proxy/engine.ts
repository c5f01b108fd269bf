/** A data plane for one mode. The worker drives it; the router and in-flight counts feed it. */
export interface Engine {
  /** Serve on an inherited, bound listener fd. */
  listen(fd: number): Promise<void>;
  /** The route changed: forget upstream state of targets that left the active generation. */
  retire(alive: Set<string>, gen: number | null): void;
  /** Resolves once `gen` has nothing in flight here and no upstream connections are kept. */
  drain(gen: number): Promise<void>;
  /** The drain deadline passed: cut everything `gen` still has open. */
  cut(gen: number): void;
  /** Open client connections. */
  connections(): Promise<number>;
  /** Stop accepting, finish what is in flight (at most `timeoutMs`), close everything. */
  stop(timeoutMs: number): Promise<void>;
}

