// Between HTTP/2 clients and HTTP/1.1 backends. A request becomes the HTTP/1.1 request a
// backend gets (RFC 9113 §8.3, RFC 9110 §7.2): the pseudo-header :authority becomes Host,
// split Cookie fields are joined again (§8.2.3), and a body without a Content-Length goes
// chunked, since HTTP/2 frames it by DATA frames. Answers' 1xx and trailers go the other way.
import type http from 'node:http';
import http2, { type Http2ServerRequest, type Http2ServerResponse, type Http2Stream, type OutgoingHttpHeaders } from 'node:http2';
import { plainFields } from '../headers.js';

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

/**
 * Over HTTP/2 any 1xx is a HEADERS frame on the stream (RFC 9113 §8.1): relayed as it came,
 * its fields in order (the compatibility API has no 102 and reorders a 103's fields).
 */
export function relayInformationalH2(res: Http2ServerResponse, status: number, raw: string[]): void {
  const stream = res.stream;
  if (stream.headersSent || stream.destroyed || stream.closed) return;
  try {
    stream.additionalHeaders({ ':status': status, ...h2Fields(plainFields(raw, [])) });
  } catch {
    // A field HTTP/2 cannot carry: the informational answer is only a hint, the final one follows.
  }
}

/** Flat fields as an HTTP/2 header object: names lower-case, repeated fields kept in order. */
export function h2Fields(flat: string[]): OutgoingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < flat.length; i += 2) {
    const k = flat[i]!.toLowerCase();
    const was = out[k];
    out[k] = was === undefined ? flat[i + 1]! : [...(Array.isArray(was) ? was : [was]), flat[i + 1]!];
  }
  return out;
}

// Http2ServerResponse is not an http.ServerResponse in two ways that matter to the engine: it
// has no `destroyed`, and once its stream is closed it says writableFinished, reset or not.
// (An http.ServerResponse that `res.destroyed` left unchecked, or a reset taken for a
// finished answer, left an upstream request paused forever and its generation in flight.)
const streamOf = (res: http.ServerResponse): Http2Stream | undefined => (res as unknown as Partial<Http2ServerResponse>).stream;

/** The client is gone (its connection, or its HTTP/2 stream): nothing more can be sent. */
export function responseGone(res: http.ServerResponse): boolean {
  const stream = streamOf(res);
  return stream === undefined ? res.destroyed : stream.destroyed;
}

/** The whole answer went out (and was not reset). */
export function responseComplete(res: http.ServerResponse): boolean {
  const stream = streamOf(res);
  return stream === undefined ? res.writableFinished : res.writableEnded && stream.rstCode === http2.constants.NGHTTP2_NO_ERROR;
}
