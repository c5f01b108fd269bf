// Node's http server parses a TLS connection in C++ straight off the TLS handle when it can
// (the handle is a StreamBase, like a TCP one). Pausing that handle is not immediate: text
// already decrypted from the same TLS read still reaches the parser, which Node has paused too
// (a pipelined request behind an answer still being written), and it fails the connection
// with HPE_PAUSED ("Parse Error: Paused", seen on Node 20 and 26). Marking the handle as
// consumed makes the server read the socket as a stream ('data' events), where pause works.
// On a Node without the flag nothing changes (and the conformance suite over HTTPS shows it).
import type tls from 'node:tls';

/** Before Node's http server takes `socket`: it parses it from 'data' events, not off the handle. */
export function parseFromStream(socket: tls.TLSSocket): void {
  const handle = (socket as unknown as { _handle?: { _consumed?: boolean } | null })._handle;
  if (handle != null) handle._consumed = true;
}
