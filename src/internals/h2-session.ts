// An HTTP/2 server session that outlives its client's GOAWAY. Node answers a GOAWAY with
// NO_ERROR from the peer by calling session.close() itself (lib/internal/http2/core.js,
// onGoawayData), so the session ends the connection the moment its last stream is done on
// the server's side. A Node client sends that GOAWAY as soon as it reads ours (its own close()
// does), and when our FIN arrives while one of its streams still holds unread data (a slow
// reader: the flow-control window's worth), that client drops the data with the session:
// measured in the h2 storms as answers cut 60-130 KB before their end. Held open, the session
// ends when the client, done reading, closes the connection, or by the caller's own close.
import type { ServerHttp2Session } from 'node:http2';

/** Node's own close() on a peer's GOAWAY is ignored from now on; the returned function closes for real. */
export function holdOpenAfterPeerGoaway(s: ServerHttp2Session): () => void {
  const close = s.close;
  // An own property shadows the prototype's method that onGoawayData calls.
  Object.defineProperty(s, 'close', { configurable: true, writable: true, value: () => {} });
  return () => close.call(s);
}
