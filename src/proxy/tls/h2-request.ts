// An HTTP/2 request as the HTTP/1.1 request a backend gets (RFC 9113 §8.3, RFC 9110 §7.2):
// the pseudo-header :authority becomes Host, split Cookie fields are joined again (§8.2.3),
// and a body without a Content-Length goes chunked, since HTTP/2 frames it by DATA frames.
import type http from 'node:http';
import type { Http2ServerRequest } from 'node:http2';

/** `req` is an HTTP/2 compatibility request (httpVersionMajor 2): its fields for an HTTP/1.1 head. */
export function h1Fields(req: http.IncomingMessage): string[] {
  const h2 = req as unknown as Http2ServerRequest;
  const raw = h2.rawHeaders;
  const out: string[] = [];
  let authority: string | undefined;
  let host = false;
  let length = false;
  let cookie: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) === 58 /* : */) {
      if (name === ':authority') authority = value;
      continue;
    }
    if (name === 'cookie') { cookie = cookie === undefined ? value : `${cookie}; ${value}`; continue; }
    if (name === 'host') host = true;
    else if (name === 'content-length') length = true;
    out.push(name, value);
  }
  if (!host && authority !== undefined) out.unshift('host', authority);
  if (cookie !== undefined) out.push('cookie', cookie);
  if (!length && !h2.stream.endAfterHeaders) out.push('transfer-encoding', 'chunked');
  return out;
}
