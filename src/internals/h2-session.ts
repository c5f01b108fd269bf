// An HTTP/2 server session that does not end the moment its client's GOAWAY says it may.
// Node answers a GOAWAY with NO_ERROR from the peer by calling session.close() itself, right
// after the 'goaway' event (lib/internal/http2/core.js, onGoawayData), so the session ends the
// connection as soon as its last stream is written. A Node client sends that GOAWAY as soon as
// it reads ours (its own close() does), and when our FIN arrives while one of its streams still
// holds unread data (a slow reader: the flow-control window's worth), it drops that data with
// the session: measured in the h2 storms as answers cut 60-130 KB before their end.
// That close is put off by PEER_GOAWAY_GRACE_MS: by then the client has read what it holds
// (or closed itself). It cannot simply wait for the client's FIN: once nghttp2 wants nothing
// more, Node stops reading the socket, and the FIN would never be seen.
import type { ServerHttp2Session } from 'node:http2';

export const PEER_GOAWAY_GRACE_MS = 5_000;

export function holdOpenAfterPeerGoaway(s: ServerHttp2Session): void {
  const close = s.close;
  let peerSaidGoaway = false;
  // Node's close() follows the 'goaway' event synchronously: put off until the next microtask.
  s.on('goaway', () => {
    peerSaidGoaway = true;
    queueMicrotask(() => { peerSaidGoaway = false; });
  });
  // An own property shadows the prototype's method that onGoawayData calls.
  Object.defineProperty(s, 'close', {
    configurable: true,
    writable: true,
    value: (...args: unknown[]) => {
      if (!peerSaidGoaway) return close.apply(s, args as []);
      setTimeout(() => close.apply(s), PEER_GOAWAY_GRACE_MS).unref();
      return undefined;
    },
  });
}
