// The HTTP/2 sessions of a TLS engine: their limits, their flood guard and their graceful end.
//
// Ending a session gracefully has one race the protocol cannot close from the server's side:
// a stream the client sends while the GOAWAY is on its way is not processed, and is answered
// REFUSED_STREAM (safe to send again, RFC 9113 §8.7.1; browsers and curl do). The announcement
// of RFC 9113 §6.8 (a first GOAWAY with the largest stream id) does not help on Node: nghttp2
// ignores every new stream once it has sent any GOAWAY but a "shutdown notice", which Node does
// not expose, so the announcement only delays the same refusals (measured). What hotproxy does
// instead is choose the moment: the one GOAWAY goes out while a request is open, so a client
// that waits for its answer before it sends again (one request at a time, as most do) reads
// the GOAWAY before that answer and never races it; an idle session is ended as its next
// request arrives, or after a quiet second. Clients that keep several streams in flight can
// still have one refused (measured: a few per thousand in the storms), which they send again.
import http2, { type ServerHttp2Session } from 'node:http2';
import type { Logger } from '../../log.js';
import { H2_FLOOD } from '../../messages.js';
import { holdOpenAfterPeerGoaway } from '../../internals/index.js';

/** An idle session being ended waits this long for a stream to end it with, then goes. */
const GOAWAY_QUIET_MS = 1_000;
/** How often a session past its GOAWAY is looked at (idle as long as the keep-alive timeout: closed). */
const LINGER_POLL_MS = 250;
/** Rapid reset (CVE-2023-44487): more streams reset by the client than this within the window closes the session. */
const RESET_LIMIT = 200;
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
  /** Its end began. */
  ending: boolean;
  /** When a stream last arrived or closed. */
  lastActive: number;
}

export class Sessions {
  private open = new Map<ServerHttp2Session, State>();
  private ending = false;

  constructor(private log: Logger, private idleMs: number) {}

  get size(): number {
    return this.open.size;
  }

  /** Streams open in all sessions: each closes only once its answer is written out. */
  streams(): number {
    let n = 0;
    for (const state of this.open.values()) n += state.streams;
    return n;
  }

  add(s: ServerHttp2Session): void {
    const state: State = { streams: 0, ending: false, lastActive: Date.now() };
    holdOpenAfterPeerGoaway(s);
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
      state.lastActive = Date.now();
      stream.once('close', () => { state.streams--; state.lastActive = Date.now(); });
      stream.once('aborted', () => {
        const now = Date.now();
        if (now - windowStart > RESET_WINDOW_MS) { windowStart = now; resets = 0; }
        if (++resets <= RESET_LIMIT) return;
        this.log.warn({ resets, windowMs: RESET_WINDOW_MS, client: s.socket?.remoteAddress }, H2_FLOOD);
        // One GOAWAY with the code (a goaway() then destroy() would send a second, NO_ERROR).
        s.destroy(new Error('rapid reset'), http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
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
    const goaway = (): void => {
      clearTimeout(timer);
      s.off('stream', goaway);
      if (s.closed || s.destroyed) return;
      // Not close(): that destroys the socket as soon as the last stream is written, and a
      // client still reading a big answer would lose its tail to the reset that follows
      // (unread bytes of ours, a WINDOW_UPDATE of its own, make the close a reset). The
      // client closes the session itself once it has read everything; one that does not
      // is closed after the keep-alive timeout without streams (or cut at the retire deadline).
      // Its last stream id is nghttp2's last processed one (a stream whose HEADERS it took but
      // whose 'stream' event is still to come is neither lost nor answered twice).
      s.goaway(http2.constants.NGHTTP2_NO_ERROR);
      const linger = (): void => {
        if (s.closed || s.destroyed) return;
        if (state.streams === 0 && Date.now() - state.lastActive >= this.idleMs) { s.close(); return; }
        setTimeout(linger, LINGER_POLL_MS).unref();
      };
      linger();
    };
    const timer = setTimeout(goaway, GOAWAY_QUIET_MS);
    timer.unref();
    // With a request open, a client that waits for its answer before it sends again reads the
    // GOAWAY first. An idle session is ended as its next request arrives (which the GOAWAY
    // takes, and which runs to its end), or after a quiet spell.
    if (state.streams > 0) { goaway(); return; }
    s.on('stream', goaway);
  }
}
