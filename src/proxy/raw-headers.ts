// Request and response heads for the raw engine, built as strings in one pass with the same
// rules as headers.ts (RFC 9110 §7.6.1 hop-by-hop fields, Connection-listed fields,
// X-Forwarded-* with --trust-proxy). Names are lower-cased only when their length matches a
// field of interest, so most headers are copied without a string allocation.

/** Request flags. */
export const REQ_BODY = 1;
export const REQ_CHUNKED = 2;
export const REQ_EXPECT_CONTINUE = 4;
export const REQ_EXPECT_OTHER = 8;
/** Response flags. */
export const RES_LENGTH = 1;
export const RES_CHUNKED = 2;

export interface HeadOut {
  flags: number;
  /** The response's Keep-Alive value, if any. */
  keepAliveHeader: string | undefined;
}

export interface Peer {
  /** The client address as sent in X-Forwarded-For (v4-mapped prefix stripped). */
  ip: string;
  /** Whether client-sent X-Forwarded-* are kept (--trust-proxy). */
  trusted: boolean;
}

/** Lower-cased names a Connection value lists, besides close/keep-alive/upgrade handling. */
function tokens(value: string, into: Set<string> | undefined): Set<string> | undefined {
  // The common values list nothing.
  if (value.length === 10 || value.length === 5) {
    const v = value.toLowerCase();
    if (v === 'keep-alive' || v === 'close') return into;
  }
  for (const t of value.split(',')) {
    const k = t.trim().toLowerCase();
    if (k && k !== 'close' && k !== 'keep-alive') (into ??= new Set()).add(k);
  }
  return into;
}

/**
 * `METHOD url HTTP/1.1` and the headers to send upstream, ending in an empty line. Sets
 * `out.flags`. `keepUpgrade` keeps Connection/Upgrade for a protocol switch.
 */
export function requestHead(out: HeadOut, method: string, url: string, raw: string[], peer: Peer, keepUpgrade: boolean): string {
  let extra: Set<string> | undefined;
  const n = raw.length;
  for (let i = 0; i < n; i += 2) {
    const k = raw[i]!;
    if (k.length === 10 && k.toLowerCase() === 'connection') extra = tokens(raw[i + 1]!, extra);
  }
  if (keepUpgrade && extra !== undefined) extra.delete('upgrade');
  let head = `${method} ${url} HTTP/1.1\r\n`;
  let flags = 0;
  let xff: string | undefined;
  let proto: string | undefined;
  let host: string | undefined;
  let xfHost: string | undefined;
  for (let i = 0; i < n; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const len = name.length;
    if (len >= 12 && (name.charCodeAt(0) | 32) === 120 && name.charCodeAt(1) === 45) {
      const lower = name.toLowerCase();
      if (lower.startsWith('x-forwarded-')) {
        if (!peer.trusted) continue;
        if (lower === 'x-forwarded-for') { xff = xff ? `${xff}, ${value}` : value; continue; }
        if (lower === 'x-forwarded-proto') { proto = value; continue; }
        if (lower === 'x-forwarded-host') { xfHost = value; continue; }
      }
    }
    switch (len) {
      case 2: if (name.toLowerCase() === 'te') continue; break;
      case 4: if (name.toLowerCase() === 'host') host = value; break;
      case 6: if (name.toLowerCase() === 'expect') {
        flags |= value.trim().toLowerCase() === '100-continue' ? REQ_EXPECT_CONTINUE : REQ_EXPECT_OTHER;
        continue;
      } break;
      case 7: {
        const lower = name.toLowerCase();
        if (lower === 'upgrade') { if (keepUpgrade) head += `${name}: ${value}\r\n`; continue; }
        if (lower === 'trailer') continue;
        break;
      }
      case 10: {
        const lower = name.toLowerCase();
        if (lower === 'connection') { if (keepUpgrade) head += `${name}: ${value}\r\n`; continue; }
        if (lower === 'keep-alive') continue;
        break;
      }
      case 14: if (name.toLowerCase() === 'content-length') { if (value !== '0') flags |= REQ_BODY; } break;
      case 16: if (name.toLowerCase() === 'proxy-connection') continue; break;
      case 17: if (name.toLowerCase() === 'transfer-encoding') { flags |= REQ_BODY | REQ_CHUNKED; continue; } break;
      case 18: if (name.toLowerCase() === 'proxy-authenticate') continue; break;
      case 19: if (name.toLowerCase() === 'proxy-authorization') continue; break;
    }
    if (extra !== undefined && extra.has(name.toLowerCase())) continue;
    head += `${name}: ${value}\r\n`;
  }
  head += `x-forwarded-for: ${xff ? `${xff}, ${peer.ip}` : peer.ip}\r\nx-forwarded-proto: ${proto ?? 'http'}\r\n`;
  const fwdHost = xfHost ?? host;
  if (fwdHost !== undefined) head += `x-forwarded-host: ${fwdHost}\r\n`;
  // HTTP/1.1 requires Host (an HTTP/1.0 client may leave it out); undici adds one likewise.
  if (host === undefined) head += 'host: localhost\r\n';
  if (flags & REQ_CHUNKED) head += 'transfer-encoding: chunked\r\n';
  out.flags = flags;
  return head + '\r\n';
}

/**
 * `HTTP/1.1 status msg` and the end-to-end response headers, without the final empty line
 * (the caller adds framing and Connection). Sets `out.flags` and `out.keepAliveHeader`.
 */
export function responseHead(out: HeadOut, status: number, msg: string, raw: string[]): string {
  let extra: Set<string> | undefined;
  const n = raw.length;
  for (let i = 0; i < n; i += 2) {
    const k = raw[i]!;
    if (k.length === 10 && k.toLowerCase() === 'connection') extra = tokens(raw[i + 1]!, extra);
  }
  let head = `HTTP/1.1 ${status} ${msg}\r\n`;
  let flags = 0;
  out.keepAliveHeader = undefined;
  for (let i = 0; i < n; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    switch (name.length) {
      case 2: if (name.toLowerCase() === 'te') continue; break;
      case 7: { const l = name.toLowerCase(); if (l === 'upgrade' || l === 'trailer') continue; break; }
      case 10: {
        const l = name.toLowerCase();
        if (l === 'connection') continue;
        if (l === 'keep-alive') { out.keepAliveHeader = value; continue; }
        break;
      }
      case 14: if (name.toLowerCase() === 'content-length') flags |= RES_LENGTH; break;
      case 16: if (name.toLowerCase() === 'proxy-connection') continue; break;
      case 17: if (name.toLowerCase() === 'transfer-encoding') { flags |= RES_CHUNKED; continue; } break;
      case 18: if (name.toLowerCase() === 'proxy-authenticate') continue; break;
      case 19: if (name.toLowerCase() === 'proxy-authorization') continue; break;
    }
    if (extra !== undefined && extra.has(name.toLowerCase())) continue;
    head += `${name}: ${value}\r\n`;
  }
  out.flags = flags;
  return head;
}

/** Milliseconds to keep an idle upstream connection, from the backend's `Keep-Alive: timeout=N`. */
export function keepAliveMs(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const m = /timeout\s*=\s*(\d+)/i.exec(value);
  if (!m) return fallback;
  // A second less than announced, like undici: the backend's timer may fire first.
  return Math.min(Number(m[1]) * 1000 - 1000, 600_000);
}

export function stripV4Mapped(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}
