// Header rules for forwarding, the one copy both engines use (RFC 9110 §7.6.1): hop-by-hop
// fields are this connection's business, not the backend's; X-Forwarded-* says who the client
// really was. Names are lower-cased only when their length matches a field of interest, so
// most headers are copied without a string allocation. X-Request-ID follows the same trust as
// X-Forwarded-*.
import type { BlockList } from 'node:net';
import { newRequestId } from './request-id.js';

/** More header fields than this in a request: 431 (Apache's LimitRequestFields default). */
export const MAX_HEADER_FIELDS = 100;

/** Request flags. */
export const REQ_BODY = 1;
export const REQ_CHUNKED = 2;
export const REQ_EXPECT_CONTINUE = 4;
export const REQ_EXPECT_OTHER = 8;
export const REQ_HOST = 16;
/** Response flags. */
export const RES_LENGTH = 1;

export interface HeadOut {
  flags: number;
  /** The response's Keep-Alive value, if any. */
  keepAliveHeader: string | undefined;
  /** The one Content-Length as a number, or -1 (none, several, not a plain number; a request's: chunked). */
  length?: number;
  /** responseFields: the body is framed by chunked transfer coding (the last coding of the last Transfer-Encoding). */
  chunked?: boolean;
}

/** What requestFields learns of a request besides its framing, for the access log. */
export interface RequestOut extends HeadOut {
  /** The X-Request-ID sent upstream: a trusted peer's, or one made for this request. */
  requestId: string;
  userAgent: string | undefined;
}

export interface Peer {
  /** The client address as sent in X-Forwarded-For (v4-mapped prefix stripped). */
  ip: string;
  /** Whether client-sent X-Forwarded-* are kept (--trust-proxy). */
  trusted: boolean;
  /** What the client spoke to the proxy, for X-Forwarded-Proto: http unless said. */
  proto?: 'http' | 'https';
}

export function peerOf(remoteAddress: string | undefined, trusted: BlockList | undefined, proto: 'http' | 'https' = 'http'): Peer {
  const ip = stripV4Mapped(remoteAddress ?? '');
  const v6 = ip.includes(':');
  return { ip, trusted: trusted !== undefined && ip !== '' && trusted.check(ip, v6 ? 'ipv6' : 'ipv4'), proto };
}

// What a field is to a proxy.
const END_TO_END = 0;
const HOP = 1;
const CONNECTION = 2;
const UPGRADE = 3;
const KEEP_ALIVE = 4;
const TRANSFER_ENCODING = 5;
const CONTENT_LENGTH = 6;
const HOST = 7;
const EXPECT = 8;
const TE = 9;
const USER_AGENT = 10;

function kind(name: string): number {
  switch (name.length) {
    case 2: return name.toLowerCase() === 'te' ? TE : END_TO_END;
    case 4: return name.toLowerCase() === 'host' ? HOST : END_TO_END;
    case 6: return name.toLowerCase() === 'expect' ? EXPECT : END_TO_END;
    case 7: {
      const l = name.toLowerCase();
      return l === 'upgrade' ? UPGRADE : END_TO_END;
    }
    case 10: {
      const l = name.toLowerCase();
      return l === 'connection' ? CONNECTION : l === 'keep-alive' ? KEEP_ALIVE : l === 'user-agent' ? USER_AGENT : END_TO_END;
    }
    case 14: return name.toLowerCase() === 'content-length' ? CONTENT_LENGTH : END_TO_END;
    case 16: return name.toLowerCase() === 'proxy-connection' ? HOP : END_TO_END;
    case 17: return name.toLowerCase() === 'transfer-encoding' ? TRANSFER_ENCODING : END_TO_END;
    case 18: return name.toLowerCase() === 'proxy-authenticate' ? HOP : END_TO_END;
    case 19: return name.toLowerCase() === 'proxy-authorization' ? HOP : END_TO_END;
    default: return END_TO_END;
  }
}

/** Lower-cased names the Connection fields list (hop-by-hop too), besides close/keep-alive. */
function connectionTokens(raw: string[]): Set<string> | undefined {
  let into: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!;
    if (k.length !== 10 || k.toLowerCase() !== 'connection') continue;
    const value = raw[i + 1]!;
    // The common values list nothing.
    if (value.length === 10 || value.length === 5) {
      const v = value.toLowerCase();
      if (v === 'keep-alive' || v === 'close') continue;
    }
    for (const t of value.split(',')) {
      const tok = t.trim().toLowerCase();
      if (tok && tok !== 'close' && tok !== 'keep-alive') (into ??= new Set()).add(tok);
    }
  }
  return into;
}

/** A request that asks for a WebSocket: the one upgrade tunnelled; others are plain requests. */
export function isWebSocket(raw: string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    if (kind(raw[i]!) === UPGRADE && /(^|,)\s*websocket\s*(,|$)/i.test(raw[i + 1]!)) return true;
  }
  return false;
}

/**
 * Appends to `fields` (flat [name, value, …]) the request fields to send upstream, with
 * X-Forwarded-* and X-Request-ID; framing is the caller's. Sets `out.flags`, `out.requestId`
 * and `out.userAgent`. `keepUpgrade` keeps Connection/Upgrade for a protocol switch.
 */
export function requestFields(raw: string[], peer: Peer, keepUpgrade: boolean, out: RequestOut, fields: string[]): string[] {
  const extra = connectionTokens(raw);
  if (keepUpgrade) extra?.delete('upgrade');
  let flags = 0;
  let xff: string | undefined;
  let proto: string | undefined;
  let host: string | undefined;
  let xfHost: string | undefined;
  let id: string | undefined;
  let length = -1;
  let lengths = 0;
  out.userAgent = undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (name.length >= 12 && (name.charCodeAt(0) | 32) === 120 && name.charCodeAt(1) === 45) {
      const lower = name.toLowerCase();
      if (lower.startsWith('x-forwarded-')) {
        // Client-sent values are kept only when the peer is a trusted proxy (--trust-proxy).
        if (!peer.trusted) continue;
        if (lower === 'x-forwarded-for') { xff = xff ? `${xff}, ${value}` : value; continue; }
        if (lower === 'x-forwarded-proto') { proto = value; continue; }
        if (lower === 'x-forwarded-host') { xfHost = value; continue; }
      } else if (lower === 'x-request-id') {
        // One ID per request: the first a trusted peer sent; otherwise none of the client's.
        if (peer.trusted && id === undefined && value !== '') id = value;
        continue;
      }
    }
    switch (kind(name)) {
      case HOP: case KEEP_ALIVE: continue;
      // TE is hop-by-hop, but trailers pass through: a client that takes them lets the
      // backend know it may send them, as it would directly.
      case TE: if (/(^|,)\s*trailers\s*(;|,|$)/i.test(value)) fields.push('te', 'trailers'); continue;
      case CONNECTION: case UPGRADE: if (keepUpgrade) fields.push(name, value); continue;
      case TRANSFER_ENCODING: flags |= REQ_BODY | REQ_CHUNKED; continue;
      case EXPECT:
        flags |= value.trim().toLowerCase() === '100-continue' ? REQ_EXPECT_CONTINUE : REQ_EXPECT_OTHER;
        continue;
      // Whatever Connection lists, the body goes on as framed and the request keeps its Host:
      // a dropped length would make the body the backend's next request (smuggling).
      case CONTENT_LENGTH:
        if (value !== '0') flags |= REQ_BODY;
        length = lengths++ > 0 || !PLAIN_LENGTH.test(value) ? -1 : Number(value);
        fields.push(name, value);
        continue;
      case HOST: host = value; flags |= REQ_HOST; fields.push(name, value); continue;
      case USER_AGENT: out.userAgent = value; break;
    }
    if (extra !== undefined && extra.has(name.toLowerCase())) continue;
    fields.push(name, value);
  }
  fields.push('x-forwarded-for', xff ? `${xff}, ${peer.ip}` : peer.ip, 'x-forwarded-proto', proto ?? peer.proto ?? 'http');
  const fwdHost = xfHost ?? host;
  if (fwdHost !== undefined) fields.push('x-forwarded-host', fwdHost);
  id ??= newRequestId();
  fields.push('x-request-id', id);
  out.requestId = id;
  out.flags = flags;
  out.length = flags & REQ_CHUNKED ? -1 : length;
  return fields;
}

/**
 * Appends to `fields` the end-to-end response fields for the client; framing and Connection
 * are the caller's. Sets `out.flags` and `out.keepAliveHeader`.
 */
export function responseFields(raw: string[], out: HeadOut, fields: string[]): string[] {
  const extra = connectionTokens(raw);
  let flags = 0;
  let length = -1;
  let chunked = false;
  out.keepAliveHeader = undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    switch (kind(name)) {
      case HOP: case TE: case CONNECTION: case UPGRADE: continue;
      case TRANSFER_ENCODING: chunked = CHUNKED_LAST.test(value); continue;
      case KEEP_ALIVE: out.keepAliveHeader = value; continue;
      // Kept whatever Connection lists: RES_LENGTH tells the caller the body is framed.
      case CONTENT_LENGTH:
        length = flags & RES_LENGTH || !PLAIN_LENGTH.test(value) ? -1 : Number(value);
        flags |= RES_LENGTH;
        fields.push(name, value);
        continue;
    }
    if (extra !== undefined && extra.has(name.toLowerCase())) continue;
    fields.push(name, value);
  }
  out.flags = flags;
  out.length = length;
  out.chunked = chunked;
  return fields;
}

const CHUNKED_LAST = /(?:^|,)\s*chunked\s*$/i;
const PLAIN_LENGTH = /^\d{1,15}$/;

/**
 * Appends to `fields` all but hop-by-hop and framing ones: what passes on of a trailer section
 * (where those have no meaning, RFC 9110 §6.5.1) and of a 1xx head.
 */
export function plainFields(raw: string[], fields: string[]): string[] {
  for (let i = 0; i < raw.length; i += 2) {
    const k = kind(raw[i]!);
    if (k === END_TO_END || k === EXPECT || k === USER_AGENT) fields.push(raw[i]!, raw[i + 1]!);
  }
  return fields;
}

export function stripV4Mapped(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}
