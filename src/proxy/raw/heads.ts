// The raw engine's heads as bytes on the wire. Which fields go where is decided in
// headers.ts, shared with the node engine; this file only adds the framing and joins.
import { REQ_CHUNKED, REQ_EXPECT_CONTINUE, REQ_HOST, requestFields, responseFields, plainFields, type HeadOut, type Peer, type RequestOut } from '../headers.js';

// Reused for every head: the fields are joined into a string before the next one is built.
const fields: string[] = [];

function join(head: string): string {
  for (let i = 0; i < fields.length; i += 2) head += `${fields[i]}: ${fields[i + 1]}\r\n`;
  fields.length = 0;
  return head;
}

/**
 * `METHOD url HTTP/1.1` and the headers to send upstream, ending in an empty line. Sets
 * `out.flags`, `out.requestId` and `out.userAgent`. `keepUpgrade` keeps Connection/Upgrade for
 * a protocol switch.
 */
export function requestHead(out: RequestOut, method: string, url: string, raw: string[], peer: Peer, keepUpgrade: boolean, http10: boolean): string {
  requestFields(raw, peer, keepUpgrade, out, fields);
  let head = join(`${method} ${url} HTTP/1.1\r\n`);
  // HTTP/1.1 requires Host (an HTTP/1.0 client may leave it out); Node's client adds one likewise.
  if (!(out.flags & REQ_HOST)) head += 'host: localhost\r\n';
  if (out.flags & REQ_CHUNKED) head += 'transfer-encoding: chunked\r\n';
  // The backend decides whether it wants the body; its 100 (or its refusal) is relayed. An
  // HTTP/1.0 client must not get a 1xx, so its expectation goes no further.
  if (out.flags & REQ_EXPECT_CONTINUE && !http10) head += 'expect: 100-continue\r\n';
  return head + '\r\n';
}

/** The last chunk of a chunked body, with the trailer fields worth passing on. */
export function lastChunk(trailers: string[] | null): string {
  if (trailers === null || trailers.length === 0) return '0\r\n\r\n';
  plainFields(trailers, fields);
  return join('0\r\n') + '\r\n';
}

/** A 1xx response to relay (`HTTP/1.1 103 Early Hints` and its fields, empty line included). */
export function informationalHead(status: number, msg: string, raw: string[]): string {
  plainFields(raw, fields);
  return join(`HTTP/1.1 ${status} ${msg}\r\n`) + '\r\n';
}

/**
 * `HTTP/1.1 status msg` and the end-to-end response headers, without the final empty line
 * (the caller adds framing and Connection). Sets `out.flags` and `out.keepAliveHeader`.
 */
export function responseHead(out: HeadOut, status: number, msg: string, raw: string[]): string {
  responseFields(raw, out, fields);
  return join(`HTTP/1.1 ${status} ${msg}\r\n`);
}

/** Milliseconds to keep an idle upstream connection, from the backend's `Keep-Alive: timeout=N`. */
export function keepAliveMs(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const m = /timeout\s*=\s*(\d+)/i.exec(value);
  if (!m) return fallback;
  // A second less than announced, like undici: the backend's timer may fire first.
  return Math.min(Number(m[1]) * 1000 - 1000, 600_000);
}

