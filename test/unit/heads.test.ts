import { describe, expect, it } from 'vitest';
import { REQ_BODY, REQ_CHUNKED, RES_LENGTH, type Peer, type RequestOut } from '../../src/proxy/headers.js';
import { informationalHead, keepAliveMs, lastChunk, requestHead as makeHead, responseHead } from '../../src/proxy/raw/heads.js';

const CLIENT: Peer = { ip: '192.0.2.9', trusted: false };
const FWD = 'x-forwarded-for: 192.0.2.9\r\nx-forwarded-proto: http\r\n';
const out = (): RequestOut => ({ flags: 0, keepAliveHeader: undefined, requestId: '', userAgent: undefined });
/** The head with its request ID written as ID. */
const requestHead = (o: RequestOut, ...args: Parameters<typeof makeHead> extends [unknown, ...infer R] ? R : never): string =>
  makeHead(o, ...args).replace(`x-request-id: ${o.requestId}\r\n`, 'x-request-id: ID\r\n');
const ID = 'x-request-id: ID\r\n';

describe('requestHead', () => {
  it('is the request line, the fields as sent, X-Forwarded-*, and the empty line', () => {
    const head = requestHead(out(), 'GET', '/a?b=1', ['Host', 'h.example', 'Accept', '*/*'], CLIENT, false, false);
    expect(head).toBe(`GET /a?b=1 HTTP/1.1\r\nHost: h.example\r\nAccept: */*\r\n${FWD}x-forwarded-host: h.example\r\n${ID}\r\n`);
  });

  it('goes upstream as HTTP/1.1 for an HTTP/1.0 client, with a Host when the client sent none', () => {
    const head = requestHead(out(), 'GET', '/', [], CLIENT, false, true);
    expect(head).toBe(`GET / HTTP/1.1\r\n${FWD}${ID}host: localhost\r\n\r\n`);
  });

  it('a chunked request body is announced as chunked, after the fields', () => {
    const o = out();
    const head = requestHead(o, 'POST', '/up', ['Host', 'h', 'Transfer-Encoding', 'chunked'], CLIENT, false, false);
    expect(head).toBe(`POST /up HTTP/1.1\r\nHost: h\r\n${FWD}x-forwarded-host: h\r\n${ID}transfer-encoding: chunked\r\n\r\n`);
    expect(o.flags & (REQ_BODY | REQ_CHUNKED)).toBe(REQ_BODY | REQ_CHUNKED);
  });

  it('Expect: 100-continue goes on for an HTTP/1.1 client, so the backend decides', () => {
    const head = requestHead(out(), 'PUT', '/', ['Host', 'h', 'Content-Length', '9', 'Expect', '100-Continue'], CLIENT, false, false);
    expect(head).toBe(`PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n${FWD}x-forwarded-host: h\r\n${ID}expect: 100-continue\r\n\r\n`);
  });

  it('Expect: 100-continue stops here for an HTTP/1.0 client, which must not get a 100', () => {
    const head = requestHead(out(), 'PUT', '/', ['Host', 'h', 'Content-Length', '9', 'Expect', '100-continue'], CLIENT, false, true);
    expect(head).not.toMatch(/expect/i);
  });

  it('a WebSocket handshake keeps its Connection and Upgrade fields', () => {
    const raw = ['Host', 'h', 'Connection', 'Upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Version', '13'];
    const head = requestHead(out(), 'GET', '/ws', raw, CLIENT, true, false);
    expect(head).toBe(`GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n${FWD}x-forwarded-host: h\r\n${ID}\r\n`);
  });

  it('fields of one head never leak into the next', () => {
    requestHead(out(), 'GET', '/', ['Host', 'first', 'X-First', '1'], CLIENT, false, false);
    expect(responseHead(out(), 204, 'No Content', ['X-Second', '2'])).toBe('HTTP/1.1 204 No Content\r\nX-Second: 2\r\n');
  });
});

describe('responseHead', () => {
  it('is the status line and end-to-end fields, left open for the caller\'s framing', () => {
    const o = out();
    const head = responseHead(o, 200, 'OK', ['Content-Length', '2', 'Connection', 'keep-alive', 'Keep-Alive', 'timeout=5', 'ETag', '"e"']);
    expect(head).toBe('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nETag: "e"\r\n');
    expect(o.flags).toBe(RES_LENGTH);
    expect(o.keepAliveHeader).toBe('timeout=5');
  });

  it('an empty reason phrase keeps the space before it', () => {
    expect(responseHead(out(), 200, '', [])).toBe('HTTP/1.1 200 \r\n');
  });

  it('a reason phrase is passed as the backend wrote it', () => {
    expect(responseHead(out(), 418, "I'm a teapot", [])).toBe("HTTP/1.1 418 I'm a teapot\r\n");
  });

  it('repeated fields stay separate and in order', () => {
    expect(responseHead(out(), 200, 'OK', ['Set-Cookie', 'a=1', 'Vary', 'x', 'Set-Cookie', 'b=2']))
      .toBe('HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nVary: x\r\nSet-Cookie: b=2\r\n');
  });
});

describe('lastChunk', () => {
  it('is a bare last chunk without trailers', () => {
    expect(lastChunk(null)).toBe('0\r\n\r\n');
    expect(lastChunk([])).toBe('0\r\n\r\n');
  });

  it('carries the trailer fields, in order, before the final empty line', () => {
    expect(lastChunk(['X-Checksum', 'abc', 'Server-Timing', 'total;dur=3', 'x-checksum', 'def']))
      .toBe('0\r\nX-Checksum: abc\r\nServer-Timing: total;dur=3\r\nx-checksum: def\r\n\r\n');
  });

  it('leaves out trailer fields that mean nothing there (framing, hop-by-hop)', () => {
    expect(lastChunk(['Content-Length', '5', 'Connection', 'close', 'Transfer-Encoding', 'chunked'])).toBe('0\r\n\r\n');
    expect(lastChunk(['Content-Length', '5', 'X-A', '1'])).toBe('0\r\nX-A: 1\r\n\r\n');
  });
});

describe('informationalHead', () => {
  it('is a complete 1xx head with its fields and the empty line', () => {
    expect(informationalHead(103, 'Early Hints', ['Link', '</a.css>; rel=preload', 'Link', '</b.js>; rel=preload']))
      .toBe('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nLink: </b.js>; rel=preload\r\n\r\n');
  });

  it('a 100 without fields is just its line, and an empty reason keeps its space', () => {
    expect(informationalHead(100, 'Continue', [])).toBe('HTTP/1.1 100 Continue\r\n\r\n');
    expect(informationalHead(103, '', ['Link', '<x>'])).toBe('HTTP/1.1 103 \r\nLink: <x>\r\n\r\n');
  });

  it('drops hop-by-hop fields a backend put on it', () => {
    expect(informationalHead(102, 'Processing', ['Connection', 'keep-alive', 'X-Progress', '50']))
      .toBe('HTTP/1.1 102 Processing\r\nX-Progress: 50\r\n\r\n');
  });
});

describe('keepAliveMs', () => {
  const FALLBACK = 777;

  it('is the fallback without a Keep-Alive field, or without a timeout in it', () => {
    expect(keepAliveMs(undefined, FALLBACK)).toBe(FALLBACK);
    expect(keepAliveMs('max=100', FALLBACK)).toBe(FALLBACK);
    expect(keepAliveMs('timeout=soon', FALLBACK)).toBe(FALLBACK);
    expect(keepAliveMs('', FALLBACK)).toBe(FALLBACK);
  });

  it('is a second less than the announced timeout, so the proxy lets go before the backend does', () => {
    expect(keepAliveMs('timeout=5', FALLBACK)).toBe(4000);
    expect(keepAliveMs('timeout=5, max=1000', FALLBACK)).toBe(4000);
    expect(keepAliveMs('max=1000, timeout=65', FALLBACK)).toBe(64_000);
    expect(keepAliveMs('Timeout = 2', FALLBACK)).toBe(1000);
  });

  it('is at most ten minutes', () => {
    expect(keepAliveMs('timeout=601', FALLBACK)).toBe(600_000);
    expect(keepAliveMs('timeout=99999999', FALLBACK)).toBe(600_000);
  });

  // The pool reuses a connection only while keepAliveMs > 0.
  it('a timeout of one second or less leaves no time to reuse the connection', () => {
    expect(keepAliveMs('timeout=1', FALLBACK)).toBeLessThanOrEqual(0);
    expect(keepAliveMs('timeout=0', FALLBACK)).toBeLessThanOrEqual(0);
  });
});
