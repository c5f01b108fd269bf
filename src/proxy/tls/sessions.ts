// The HTTP/2 sessions of a TLS engine: their limits, their flood guard and their graceful end.
//
// Invariant: no stream a client opened is refused. A session ends with a GOAWAY that first
// announces the end with the largest stream id (2^31-1: everything the client may have in
// flight is still taken), and gives the real last stream id with close() only once the
// client has surely read the announcement: two PING round trips after it (nghttp2 sends a
// PING ahead of a GOAWAY queued before it, so only the second ack follows the GOAWAY), then a
// quiet spell with no stream open and none arriving (acks, urgent frames, overtake HEADERS the
// client queued before it read the GOAWAY). Until the acks come the session stays open: a
// client that is not reading has not seen the announcement either. A client that saw it opens
// no more streams on the session, and most close it themselves once their streams are done.
import http2, { type ServerHttp2Session } from 'node:http2';
import type { Logger } from '../../log.js';
import { H2_FLOOD } from '../../messages.js';

const MAX_STREAM_ID = 2 ** 31 - 1;
/** After the round trip: no stream open and none new for this long, then the final GOAWAY. */
const GOAWAY_QUIET_MS = 500;
const QUIET_POLL_MS = 50;
/** Rapid reset (CVE-2023-44487): more streams reset by the client than this within the window closes the session. */
export const RESET_LIMIT = 200;
const RESET_WINDOW_MS = 10_000;

/** Settings and Node's own flood counters, for http2.createServer. */
export function h2Options(): http2.ServerOptions {
  return {
    settings: { maxConcurrentStreams: 128, maxHeaderListSize: 64 * 1024 },
    maxHeaderListPairs: 128,
    // Node's defaults, written out because they are part of the promise: invalid frames,
    // refused streams and outstanding pings are counted and a flood ends the session.
    maxSessionInvalidFrames: 1_000,
    maxSessionRejectedStreams: 100,
    maxOutstandingPings: 10,
    maxSessionMemory: 10,
  };
}

interface State {
  /** Streams open now. */
  streams: number;
  /** When the last stream arrived. */
  lastStreamAt: number;
  /** The GOAWAY announcement went out. */
  ending: boolean;
}

export class Sessions {
  private open = new Map<ServerHttp2Session, State>();
  private ending = false;

  constructor(private log: Logger, private idleMs: number) {}

  get size(): number {
    return this.open.size;
  }

  add(s: ServerHttp2Session): void {
    const state: State = { streams: 0, lastStreamAt: Date.now(), ending: false };
    this.open.set(s, state);
    s.once('close', () => this.open.delete(s));
    // A session that errs is closed by Node; the error is the client's business.
    s.on('error', () => {});
    // Idle like a keep-alive connection: ended gracefully, never cut.
    s.setTimeout(this.idleMs, () => this.end(s));
    let resets = 0;
    let windowStart = Date.now();
    s.on('stream', (stream) => {
      state.streams++;
      state.lastStreamAt = Date.now();
      stream.once('close', () => state.streams--);
      stream.once('aborted', () => {
        const now = Date.now();
        if (now - windowStart > RESET_WINDOW_MS) { windowStart = now; resets = 0; }
        if (++resets <= RESET_LIMIT) return;
        this.log.warn({ resets, windowMs: RESET_WINDOW_MS, client: s.socket?.remoteAddress }, H2_FLOOD);
        s.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
        s.destroy();
      });
    });
    if (this.ending) this.end(s);
  }

  /** Every session ends gracefully, and any opened from now on. */
  endAll(): void {
    this.ending = true;
    for (const s of this.open.keys()) this.end(s);
  }

  destroyAll(): void {
    for (const s of this.open.keys()) s.destroy();
  }

  private end(s: ServerHttp2Session): void {
    const state = this.open.get(s);
    if (state === undefined || state.ending || s.closed || s.destroyed) return;
    state.ending = true;
    s.goaway(http2.constants.NGHTTP2_NO_ERROR, MAX_STREAM_ID);
    const gone = (): boolean => s.closed || s.destroyed;
    const whenQuiet = (): void => {
      if (gone()) return;
      if (state.streams === 0 && Date.now() - state.lastStreamAt >= GOAWAY_QUIET_MS) { s.close(); return; }
      setTimeout(whenQuiet, QUIET_POLL_MS).unref();
    };
    // Without an ack the client has read nothing: whatever it sends is still taken, and the
    // session waits for the client to leave, or for the retire deadline.
    const ping = (then: () => void): void => {
      if (gone()) return;
      if (!s.ping((err) => { if (err === null) then(); })) setTimeout(() => ping(then), QUIET_POLL_MS).unref();
    };
    ping(() => ping(() => {
      // The quiet spell is counted from the round trip, not from a stream long ago.
      state.lastStreamAt = Math.max(state.lastStreamAt, Date.now());
      whenQuiet();
    }));
  }
}
