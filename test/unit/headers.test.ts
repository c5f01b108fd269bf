import { BlockList } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  isWebSocket, peerOf, plainFields, requestFields, responseFields, stripV4Mapped,
  REQ_BODY, REQ_CHUNKED, REQ_EXPECT_CONTINUE, REQ_EXPECT_OTHER, REQ_HOST, RES_LENGTH,
  type HeadOut, type Peer, type RequestOut,
} from '../../src/proxy/headers.js';

const CLIENT: Peer = { ip: '203.0.113.7', trusted: false };
const PROXY: Peer = { ip: '10.0.0.2', trusted: true };

// Flat [name, value, …] as llhttp hands them over, written as pairs to be readable.
const flat = (pairs: [string, string][]): string[] => pairs.flat();
const pairsOf = (fields: string[]): [string, string][] => {
  const out: [string, string][] = [];
  for (let i = 0; i < fields.length; i += 2) out.push([fields[i]!, fields[i + 1]!]);
  return out;
};
const names = (fields: string[]): string[] => pairsOf(fields).map(([n]) => n.toLowerCase());

const newOut = (): RequestOut => ({ flags: -1, keepAliveHeader: undefined, requestId: '', userAgent: 'stale' });

/** The last field is always the request's X-Request-ID; it is checked and left out of `fields`. */
function withoutId(fields: string[], out: RequestOut): [string, string][] {
  const pairs = pairsOf(fields);
  expect(pairs.pop()).toEqual(['x-request-id', out.requestId]);
  expect(pairs.map(([n]) => n.toLowerCase())).not.toContain('x-request-id');
  return pairs;
}

function upstream(pairs: [string, string][], peer: Peer = CLIENT, keepUpgrade = false): { fields: [string, string][]; flags: number; out: RequestOut } {
  const out = newOut();
  const fields = requestFields(flat(pairs), peer, keepUpgrade, out, []);
  return { fields: withoutId(fields, out), flags: out.flags, out };
}

// What requestFields adds after the client's fields, for an untrusted client with no Host.
const FORWARDED_TAIL: [string, string][] = [['x-forwarded-for', CLIENT.ip], ['x-forwarded-proto', 'http']];

function downstream(pairs: [string, string][]): { fields: [string, string][]; out: HeadOut } {
  const out: HeadOut = { flags: -1, keepAliveHeader: 'stale' };
  const fields = responseFields(flat(pairs), out, []);
  return { fields: pairsOf(fields), out };
}

describe('request fields sent upstream', () => {
  it('end-to-end fields pass unchanged, in order, with the case of their names', () => {
    const { fields } = upstream([['Host', 'a.example'], ['Accept', '*/*'], ['cookie', 'a=1'], ['X-Custom', ' spaced ']]);
    expect(fields.slice(0, 4)).toEqual([['Host', 'a.example'], ['Accept', '*/*'], ['cookie', 'a=1'], ['X-Custom', ' spaced ']]);
  });

  it('a repeated field stays repeated, each value in its place', () => {
    const { fields } = upstream([['Accept', 'a'], ['Cookie', 'x=1'], ['Accept', 'b'], ['Cookie', 'y=2']]);
    expect(fields).toEqual([['Accept', 'a'], ['Cookie', 'x=1'], ['Accept', 'b'], ['Cookie', 'y=2'], ...FORWARDED_TAIL]);
  });

  it('appends to the array it is given', () => {
    const out = newOut();
    const fields = requestFields(['Accept', '*/*'], CLIENT, false, out, ['already', 'there']);
    expect(withoutId(fields, out)).toEqual([['already', 'there'], ['Accept', '*/*'], ...FORWARDED_TAIL]);
  });

  it('Connection itself is not forwarded', () => {
    for (const value of ['keep-alive', 'close', 'Keep-Alive', 'CLOSE', 'upgrade']) {
      expect(names(flat(upstream([['Connection', value]]).fields))).not.toContain('connection');
    }
  });

  it('a Connection-listed field is not forwarded', () => {
    const { fields } = upstream([['Connection', 'X-Secret'], ['X-Secret', '1'], ['X-Other', '2']]);
    expect(fields).toEqual([['X-Other', '2'], ...FORWARDED_TAIL]);
  });

  it('Connection tokens are matched whatever their case, spacing, or which Connection field lists them', () => {
    const { fields } = upstream([
      ['connection', 'keep-alive ,  x-a,X-B'], ['X-A', '1'], ['x-b', '2'], ['CONNECTION', 'X-c'], ['X-C', '3'], ['X-D', '4'],
    ]);
    expect(fields).toEqual([['X-D', '4'], ...FORWARDED_TAIL]);
  });

  it('a field named like a Connection value that lists nothing (close, keep-alive) is not dropped for it', () => {
    // Keep-Alive is hop-by-hop anyway; a field called "close" is nobody's business but the backend's.
    const { fields } = upstream([['Connection', 'close'], ['close', 'yes']]);
    expect(fields).toEqual([['close', 'yes'], ...FORWARDED_TAIL]);
  });

  it('Keep-Alive, Proxy-Connection, Proxy-Authorization and Proxy-Authenticate are not forwarded', () => {
    const { fields } = upstream([
      ['Keep-Alive', 'timeout=5'], ['Proxy-Connection', 'keep-alive'], ['Proxy-Authorization', 'Basic eDp5'],
      ['Proxy-Authenticate', 'Basic'], ['Accept', '*/*'],
    ]);
    expect(fields).toEqual([['Accept', '*/*'], ...FORWARDED_TAIL]);
  });

  it('Upgrade and Connection are dropped from a request that is not switching protocols', () => {
    const { fields } = upstream([['Connection', 'Upgrade'], ['Upgrade', 'h2c'], ['HTTP2-Settings', 'AAMAAABkAAQAAP__']]);
    // HTTP2-Settings is not Connection-listed here, so it is the backend's to ignore.
    expect(fields).toEqual([['HTTP2-Settings', 'AAMAAABkAAQAAP__'], ...FORWARDED_TAIL]);
  });

  it('a WebSocket handshake keeps Connection and Upgrade as sent, and still drops other Connection-listed fields', () => {
    const { fields } = upstream([
      ['Host', 'h'], ['Connection', 'Upgrade, X-Hop'], ['Upgrade', 'websocket'], ['X-Hop', '1'], ['Sec-WebSocket-Key', 'k'],
    ], CLIENT, true);
    expect(fields.slice(0, 4)).toEqual([['Host', 'h'], ['Connection', 'Upgrade, X-Hop'], ['Upgrade', 'websocket'], ['Sec-WebSocket-Key', 'k']]);
    expect(names(flat(fields))).not.toContain('x-hop');
  });

  it('TE: trailers is passed on, as te: trailers', () => {
    expect(upstream([['TE', 'trailers']]).fields).toEqual([['te', 'trailers'], ...FORWARDED_TAIL]);
    expect(upstream([['te', 'gzip, Trailers']]).fields).toEqual([['te', 'trailers'], ...FORWARDED_TAIL]);
    expect(upstream([['TE', 'trailers, deflate;q=0.5']]).fields).toEqual([['te', 'trailers'], ...FORWARDED_TAIL]);
  });

  it('a TE without trailers, or with a token that only starts with it, is not forwarded', () => {
    expect(upstream([['TE', 'gzip']]).fields).toEqual(FORWARDED_TAIL);
    expect(upstream([['TE', 'trailersx']]).fields).toEqual(FORWARDED_TAIL);
    expect(upstream([['TE', 'x-trailers']]).fields).toEqual(FORWARDED_TAIL);
  });

  it('Transfer-Encoding is left to the caller, flagged as a chunked body', () => {
    const { fields, flags } = upstream([['Transfer-Encoding', 'chunked']]);
    expect(fields).toEqual(FORWARDED_TAIL);
    expect(flags).toBe(REQ_BODY | REQ_CHUNKED);
  });

  it('Content-Length is forwarded and flags a body, except a length of 0', () => {
    const five = upstream([['Content-Length', '5']]);
    expect(five.fields[0]).toEqual(['Content-Length', '5']);
    expect(five.flags).toBe(REQ_BODY);
    const zero = upstream([['content-length', '0']]);
    expect(zero.fields[0]).toEqual(['content-length', '0']);
    expect(zero.flags).toBe(0);
  });

  it('Expect: 100-continue is left to the caller, flagged, whatever its case and spacing', () => {
    for (const value of ['100-continue', ' 100-Continue ']) {
      const { fields, flags } = upstream([['Expect', value]]);
      expect(fields).toEqual(FORWARDED_TAIL);
      expect(flags).toBe(REQ_EXPECT_CONTINUE);
    }
  });

  it('any other expectation is not forwarded, and flagged so the caller can refuse it', () => {
    const { fields, flags } = upstream([['Expect', 'something-else']]);
    expect(fields).toEqual(FORWARDED_TAIL);
    expect(flags).toBe(REQ_EXPECT_OTHER);
  });

  it('Host is forwarded and flagged; without one, the flag is clear', () => {
    expect(upstream([['HOST', 'a.example:8080']]).flags).toBe(REQ_HOST);
    expect(upstream([['HOST', 'a.example:8080']]).fields[0]).toEqual(['HOST', 'a.example:8080']);
    expect(upstream([]).flags).toBe(0);
  });

  it('flags, ID and user agent are set afresh on each call, so a reused RequestOut carries nothing over', () => {
    const out = newOut();
    requestFields(flat([['Transfer-Encoding', 'chunked'], ['Expect', '100-continue'], ['Host', 'h'], ['User-Agent', 'ua/1']]), CLIENT, false, out, []);
    expect(out.flags).toBe(REQ_BODY | REQ_CHUNKED | REQ_EXPECT_CONTINUE | REQ_HOST);
    expect(out.userAgent).toBe('ua/1');
    const first = out.requestId;
    requestFields([], CLIENT, false, out, []);
    expect(out.flags).toBe(0);
    expect(out.userAgent).toBeUndefined();
    expect(out.requestId).not.toBe(first);
  });

  // Connection may list any name, but the body goes upstream byte for byte as it came: without
  // its Content-Length the backend reads the body as a request of its own (smuggling, seen
  // through the raw engine: a body holding `GET /smuggled` was run by the backend).
  it('a Connection-listed Content-Length still frames the body upstream', () => {
    const { fields, flags } = upstream([['Connection', 'content-length'], ['Content-Length', '5']]);
    expect(flags & REQ_BODY).toBe(REQ_BODY);
    expect(fields).toContainEqual(['Content-Length', '5']);
  });

  // The raw engine adds host: localhost only when REQ_HOST is clear, so a Host dropped here
  // would leave an HTTP/1.1 request with none.
  it('a Connection-listed Host is still forwarded', () => {
    const { fields, flags } = upstream([['Connection', 'Host'], ['Host', 'a.example']]);
    expect(flags).toBe(REQ_HOST);
    expect(fields).toContainEqual(['Host', 'a.example']);
  });
});

describe('X-Forwarded-* sent upstream', () => {
  it('from an untrusted client: the peer address, http, and the Host, after every other field', () => {
    const { fields } = upstream([['Host', 'a.example'], ['Accept', '*/*']]);
    expect(fields).toEqual([
      ['Host', 'a.example'], ['Accept', '*/*'],
      ['x-forwarded-for', CLIENT.ip], ['x-forwarded-proto', 'http'], ['x-forwarded-host', 'a.example'],
    ]);
  });

  it('without a Host there is no X-Forwarded-Host', () => {
    expect(names(flat(upstream([['Accept', '*/*']]).fields))).not.toContain('x-forwarded-host');
  });

  it('an untrusted client cannot set any X-Forwarded-* field, whatever the case of its name', () => {
    const { fields } = upstream([
      ['Host', 'real.example'], ['X-Forwarded-For', '1.2.3.4'], ['x-forwarded-proto', 'https'], ['X-FORWARDED-HOST', 'evil.example'],
      ['X-Forwarded-Port', '443'], ['X-Forwarded-Prefix', '/admin'],
    ]);
    expect(fields).toEqual([
      ['Host', 'real.example'],
      ['x-forwarded-for', CLIENT.ip], ['x-forwarded-proto', 'http'], ['x-forwarded-host', 'real.example'],
    ]);
  });

  it('fields that only look like X-Forwarded-* pass', () => {
    const { fields } = upstream([['X-Forwarder-Id', '1'], ['X-Forwarded', '2'], ['Y-Forwarded-For', '3']]);
    expect(fields.slice(0, 3)).toEqual([['X-Forwarder-Id', '1'], ['X-Forwarded', '2'], ['Y-Forwarded-For', '3']]);
  });

  it('from a trusted proxy: its X-Forwarded-For chain gets the peer appended, in field order', () => {
    const { fields } = upstream([['X-Forwarded-For', '198.51.100.1'], ['Accept', '*/*'], ['x-forwarded-for', '198.51.100.2, 198.51.100.3']], PROXY);
    expect(fields).toEqual([
      ['Accept', '*/*'],
      ['x-forwarded-for', `198.51.100.1, 198.51.100.2, 198.51.100.3, ${PROXY.ip}`], ['x-forwarded-proto', 'http'],
    ]);
  });

  it('from a trusted proxy: its X-Forwarded-Proto and X-Forwarded-Host win over http and the Host', () => {
    const { fields } = upstream([['Host', 'internal:8080'], ['X-Forwarded-Proto', 'https'], ['X-Forwarded-Host', 'public.example']], PROXY);
    expect(fields).toEqual([
      ['Host', 'internal:8080'],
      ['x-forwarded-for', PROXY.ip], ['x-forwarded-proto', 'https'], ['x-forwarded-host', 'public.example'],
    ]);
  });

  it('from a trusted proxy: other X-Forwarded-* fields pass in place', () => {
    const { fields } = upstream([['X-Forwarded-Port', '443'], ['Accept', '*/*']], PROXY);
    expect(fields.slice(0, 2)).toEqual([['X-Forwarded-Port', '443'], ['Accept', '*/*']]);
  });

  it('the user agent is noted and passed on in place, whatever the case of its name', () => {
    const { fields, out } = upstream([['Accept', '*/*'], ['USER-AGENT', 'curl/8.5.0']]);
    expect(out.userAgent).toBe('curl/8.5.0');
    expect(fields.slice(0, 2)).toEqual([['Accept', '*/*'], ['USER-AGENT', 'curl/8.5.0']]);
    expect(upstream([['Accept', '*/*']]).out.userAgent).toBeUndefined();
  });

  it('no Via is added: hotproxy does not announce itself', () => {
    expect(names(flat(upstream([['Host', 'h']]).fields))).not.toContain('via');
  });
});

describe('X-Request-ID', () => {
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  it('is made for each request, unique, last of the fields sent upstream', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const { out } = upstream([['Host', 'h']]);
      expect(out.requestId).toMatch(UUID);
      ids.add(out.requestId);
    }
    expect(ids.size).toBe(1000);
  });

  it('an untrusted client cannot name it, whatever the case of the field', () => {
    for (const name of ['X-Request-ID', 'x-request-id', 'X-REQUEST-ID']) {
      const { out } = upstream([[name, 'forged'], ['Accept', '*/*']]);
      expect(out.requestId).toMatch(UUID);
    }
  });

  it("a trusted proxy's is kept: the first one, and only if not empty", () => {
    expect(upstream([['X-Request-ID', 'abc-123'], ['Accept', '*/*']], PROXY).out.requestId).toBe('abc-123');
    expect(upstream([['x-request-id', 'first'], ['X-Request-Id', 'second']], PROXY).out.requestId).toBe('first');
    expect(upstream([['X-Request-ID', '']], PROXY).out.requestId).toMatch(UUID);
    expect(upstream([['Accept', '*/*']], PROXY).out.requestId).toMatch(UUID);
  });

  it('a field named like it is not it', () => {
    const { fields, out } = upstream([['X-Request-IDs', 'a'], ['X-Request', 'b']], PROXY);
    expect(out.requestId).toMatch(UUID);
    expect(fields.slice(0, 2)).toEqual([['X-Request-IDs', 'a'], ['X-Request', 'b']]);
  });
});

describe('the peer', () => {
  const trust = new BlockList();
  trust.addSubnet('10.0.0.0', 8);
  trust.addAddress('::1', 'ipv6');

  it('is trusted only when its address is in --trust-proxy', () => {
    expect(peerOf('10.1.2.3', trust)).toEqual({ ip: '10.1.2.3', trusted: true, proto: 'http' });
    expect(peerOf('11.1.2.3', trust)).toEqual({ ip: '11.1.2.3', trusted: false, proto: 'http' });
    expect(peerOf('::1', trust)).toEqual({ ip: '::1', trusted: true, proto: 'http' });
    expect(peerOf('::2', trust)).toEqual({ ip: '::2', trusted: false, proto: 'http' });
  });

  it('an IPv4 client on a dual-stack socket is named and judged by its IPv4 address', () => {
    expect(peerOf('::ffff:10.1.2.3', trust)).toEqual({ ip: '10.1.2.3', trusted: true, proto: 'http' });
    expect(peerOf('::ffff:192.0.2.1', trust)).toEqual({ ip: '192.0.2.1', trusted: false, proto: 'http' });
  });

  it('without --trust-proxy, or without an address (a socket already gone), nobody is trusted', () => {
    expect(peerOf('10.1.2.3', undefined)).toEqual({ ip: '10.1.2.3', trusted: false, proto: 'http' });
    expect(peerOf(undefined, trust)).toEqual({ ip: '', trusted: false, proto: 'http' });
  });

  it('stripV4Mapped leaves plain IPv4 and IPv6 addresses alone', () => {
    expect(stripV4Mapped('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(stripV4Mapped('127.0.0.1')).toBe('127.0.0.1');
    expect(stripV4Mapped('2001:db8::1')).toBe('2001:db8::1');
  });
});

describe('isWebSocket', () => {
  it('is true for an Upgrade that offers websocket, in any case, among other protocols', () => {
    expect(isWebSocket(['Upgrade', 'websocket'])).toBe(true);
    expect(isWebSocket(['upgrade', 'WebSocket'])).toBe(true);
    expect(isWebSocket(['Host', 'h', 'UPGRADE', 'h2c, websocket'])).toBe(true);
  });

  it('is false for other upgrades, look-alike tokens, or no Upgrade field', () => {
    expect(isWebSocket(['Upgrade', 'h2c'])).toBe(false);
    expect(isWebSocket(['Upgrade', 'websocketx'])).toBe(false);
    expect(isWebSocket(['X-Upgrade', 'websocket'])).toBe(false);
    expect(isWebSocket(['Connection', 'upgrade'])).toBe(false);
  });
});

describe('response fields sent to the client', () => {
  it('end-to-end fields pass in order; repeated Set-Cookie fields stay separate', () => {
    const { fields } = downstream([['Content-Type', 'text/plain'], ['Set-Cookie', 'a=1'], ['X-A', '1'], ['set-cookie', 'b=2, c=3']]);
    expect(fields).toEqual([['Content-Type', 'text/plain'], ['Set-Cookie', 'a=1'], ['X-A', '1'], ['set-cookie', 'b=2, c=3']]);
  });

  it('hop-by-hop and framing fields are the caller\'s: Connection, TE, Upgrade, Transfer-Encoding, Proxy-*', () => {
    const { fields } = downstream([
      ['Connection', 'keep-alive'], ['TE', 'trailers'], ['Upgrade', 'h2c'], ['Transfer-Encoding', 'chunked'],
      ['Proxy-Authenticate', 'Basic'], ['Proxy-Connection', 'close'], ['ETag', '"x"'],
    ]);
    expect(fields).toEqual([['ETag', '"x"']]);
  });

  it('a Connection-listed field is not relayed', () => {
    const { fields } = downstream([['Connection', 'X-Internal, close'], ['X-Internal', 'secret'], ['X-Public', 'ok']]);
    expect(fields).toEqual([['X-Public', 'ok']]);
  });

  it('the framing is read while the fields are: the one plain Content-Length as a number, chunked as the last coding', () => {
    expect(downstream([['Content-Length', '70000']]).out).toMatchObject({ flags: RES_LENGTH, length: 70_000 });
    expect(downstream([['Content-Length', '5'], ['content-length', '5']]).out.length).toBe(-1);
    expect(downstream([['Content-Length', '+5']]).out.length).toBe(-1);
    expect(downstream([['X', '1']]).out).toMatchObject({ flags: 0, length: -1, chunked: false });
    expect(downstream([['Transfer-Encoding', 'gzip, Chunked ']]).out.chunked).toBe(true);
    expect(downstream([['Transfer-Encoding', 'chunked'], ['Transfer-Encoding', 'gzip']]).out.chunked).toBe(false);
  });

  it('Keep-Alive is kept for the caller, not relayed, and forgotten on the next response without one', () => {
    const out: HeadOut = { flags: 0, keepAliveHeader: undefined };
    expect(pairsOf(responseFields(flat([['Keep-Alive', 'timeout=5, max=100'], ['X', '1']]), out, []))).toEqual([['X', '1']]);
    expect(out.keepAliveHeader).toBe('timeout=5, max=100');
    responseFields(['X', '1'], out, []);
    expect(out.keepAliveHeader).toBeUndefined();
  });

  it('Content-Length is relayed and flagged; without it the flag is clear', () => {
    const withLength = downstream([['Content-Length', '12']]);
    expect(withLength.fields).toEqual([['Content-Length', '12']]);
    expect(withLength.out.flags).toBe(RES_LENGTH);
    const without = downstream([['Transfer-Encoding', 'chunked']]);
    expect(without.out.flags).toBe(0);
    expect(without.out.keepAliveHeader).toBeUndefined();
  });

  // RES_LENGTH tells the raw engine not to add framing of its own; a length dropped for a
  // Connection token would leave a keep-alive client unable to tell where the body ends.
  it('a Connection-listed Content-Length still frames the body to the client', () => {
    const { fields, out } = downstream([['Connection', 'Content-Length'], ['Content-Length', '12']]);
    expect(out.flags).toBe(RES_LENGTH);
    expect(fields).toContainEqual(['Content-Length', '12']);
  });
});

describe('plainFields (trailers and 1xx heads)', () => {
  it('end-to-end fields pass in order, repeated ones included', () => {
    const raw = flat([['Link', '</a.css>; rel=preload'], ['X-Checksum', 'abc'], ['link', '</b.js>; rel=preload']]);
    expect(pairsOf(plainFields(raw, []))).toEqual([['Link', '</a.css>; rel=preload'], ['X-Checksum', 'abc'], ['link', '</b.js>; rel=preload']]);
  });

  it('hop-by-hop, framing and routing fields are dropped', () => {
    const raw = flat([
      ['Connection', 'close'], ['Keep-Alive', 'timeout=1'], ['TE', 'trailers'], ['Transfer-Encoding', 'chunked'],
      ['Content-Length', '3'], ['Host', 'h'], ['Upgrade', 'websocket'], ['Proxy-Authorization', 'x'], ['Server-Timing', 'db;dur=5'],
    ]);
    expect(pairsOf(plainFields(raw, []))).toEqual([['Server-Timing', 'db;dur=5']]);
  });

  it('appends to the array it is given', () => {
    expect(plainFields(['A', '1'], ['Z', '0'])).toEqual(['Z', '0', 'A', '1']);
  });
});
