/**
 * Idle upstream connections are dropped after this long unless the backend says otherwise:
 * short, so a draining generation's pools empty quickly. Both http engines use it.
 */
/**
 * The accept queue of public listeners: Node's default (511) overflows when a thousand clients
 * connect at once, and their SYNs, dropped, are sent again only after a second (measured:
 * wrk -c1000 timeouts). HAProxy sizes its own by maxconn; the kernel caps it at somaxconn.
 */
export const LISTEN_BACKLOG = 4096;

export const UPSTREAM_IDLE_MS = 1_000;

/** A data plane for one mode. The worker drives it; the router and in-flight counts feed it. */
export interface Engine {
  /** Serve on an inherited, bound listener fd. */
  listen(fd: number): Promise<void>;
  /** The route changed: forget upstream state of targets that left the active generation. */
  forget(alive: Set<string>, gen: number | null): void;
  /** Resolves once `gen` has nothing in flight here and no upstream connections are kept. */
  drain(gen: number): Promise<void>;
  /** The drain deadline passed: cut everything `gen` still has open. */
  cut(gen: number): void;
  /** Serve a client connection a retiring worker handed over (a raw TCP or pipe handle). */
  adopt(handle: unknown): void;
  /**
   * This worker is being replaced: stop accepting; pass each open keep-alive connection to
   * `handOff` at a request boundary; let the rest (in-flight, tunnels) finish until `timeoutMs`,
   * then cut them. Resolves when nothing is left.
   */
  retire(timeoutMs: number, handOff: HandOff): Promise<void>;
  /** Open client connections. */
  connections(): Promise<number>;
  /** Of those, idle keep-alive ones held as bare handles (an engine that does so). */
  idleConnections?(): number;
  /** Stop accepting, finish what is in flight (at most `timeoutMs`), close everything. */
  stop(timeoutMs: number): Promise<void>;
}

/** Sends a connection's handle away; resolves once it is on its way (then close the local copy). */
export type HandOff = (handle: unknown) => Promise<void>;
