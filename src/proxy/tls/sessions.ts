// The HTTP/2 sessions of a TLS engine: their limits, their flood guard and their graceful end.
//
// A session ends with a GOAWAY that first announces the end with the largest stream id
// (2^31-1), then, one round trip later (a PING), gives the real last stream id with close();
// the streams open by then run to their end. Caveat, measured by test/tls-storm.test.ts: nghttp2
// ignores every new stream once it has sent any GOAWAY but a shutdown notice, which Node does
// not expose, so streams the client sent in the round trip before it read the announcement are
// declared unprocessed by the final GOAWAY (REFUSED_STREAM, safe to resend: RFC 9113 §8.7.1).
import http2, { type ServerHttp2Session } from 'node:http2';
import type { Logger } from '../../log.js';
import { H2_FLOOD } from '../../messages.js';

const MAX_STREAM_ID = 2 ** 31 - 1;
/** The announcement's round trip is waited for this long at most. */
const GOAWAY_RTT_MAX_MS = 1_000;
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

/** Sessions whose end has begun (a second GOAWAY announcement would only repeat the first). */
const ending = new WeakSet<ServerHttp2Session>();

export class Sessions {
  private open = new Set<ServerHttp2Session>();
  private ending = false;

  constructor(private log: Logger, private idleMs: number) {}

  get size(): number {
    return this.open.size;
  }

  add(s: ServerHttp2Session): void {
    this.open.add(s);
    s.once('close', () => this.open.delete(s));
    // A session that errs is closed by Node; the error is the client's business.
    s.on('error', () => {});
    // Idle like a keep-alive connection: ended gracefully, never cut.
    s.setTimeout(this.idleMs, () => this.end(s));
    let resets = 0;
    let windowStart = Date.now();
    s.on('stream', (stream) => {
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
    for (const s of this.open) this.end(s);
  }

  destroyAll(): void {
    for (const s of this.open) s.destroy();
  }

  private end(s: ServerHttp2Session): void {
    if (s.closed || s.destroyed || ending.has(s)) return;
    ending.add(s);
    s.goaway(http2.constants.NGHTTP2_NO_ERROR, MAX_STREAM_ID);
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      if (!s.closed && !s.destroyed) s.close();
    };
    const timer = setTimeout(close, GOAWAY_RTT_MAX_MS);
    // nghttp2 sends PING ahead of GOAWAY (its urgent queue), and a client that acks the PING
    // before it reads the GOAWAY may open streams the final GOAWAY then refuses: the PING
    // leaves only once the announcement has been written (the frame queue is empty).
    const ping = (): void => {
      if (closed || s.closed || s.destroyed) return;
      if (s.state.outboundQueueSize !== undefined && s.state.outboundQueueSize > 0) { setImmediate(ping); return; }
      if (!s.ping(close)) close();
    };
    setImmediate(ping);
  }
}
