// Header rules for forwarding (RFC 9110 §7.6.1): hop-by-hop fields are this connection's
// business, not the backend's; X-Forwarded-* says who the client really was.
import type { BlockList } from 'node:net';

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authenticate', 'proxy-authorization',
]);

/** Lower-cased names a Connection header lists (they are hop-by-hop too). */
function connectionTokens(value: string | undefined): Set<string> | undefined {
  if (!value) return undefined;
  const s = new Set<string>();
  for (const t of value.split(',')) {
    const k = t.trim().toLowerCase();
    if (k && k !== 'close' && k !== 'keep-alive') s.add(k);
  }
  return s.size ? s : undefined;
}

export interface ClientInfo {
  remoteAddress: string | undefined;
  trusted: BlockList | undefined;
}

/**
 * The request header list to send upstream, flat [name, value, …]. `keepUpgrade` keeps
 * Connection/Upgrade for a protocol switch (WebSocket).
 */
export function requestHeaders(raw: string[], client: ClientInfo, keepUpgrade = false): string[] {
  const out: string[] = [];
  let extra: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection') extra = connectionTokens(raw[i + 1]);
  }
  const peer = client.remoteAddress ?? '';
  const trustPeer = client.trusted !== undefined && peer !== '' && client.trusted.check(stripV4Mapped(peer), peer.includes(':') && !peer.startsWith('::ffff:') ? 'ipv6' : 'ipv4');
  let xff: string | undefined;
  let proto: string | undefined;
  let host: string | undefined;
  let xfHost: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    const value = raw[i + 1]!;
    if (lower.startsWith('x-forwarded-')) {
      // Client-sent values are kept only when the peer is a trusted proxy (--trust-proxy).
      if (!trustPeer) continue;
      if (lower === 'x-forwarded-for') { xff = xff ? `${xff}, ${value}` : value; continue; }
      if (lower === 'x-forwarded-proto') { proto = value; continue; }
      if (lower === 'x-forwarded-host') { xfHost = value; continue; }
    }
    if (lower === 'host') host = value;
    if (HOP_BY_HOP.has(lower) || lower === 'expect') {
      if (keepUpgrade && (lower === 'connection' || lower === 'upgrade')) out.push(name, value);
      continue;
    }
    if (extra?.has(lower)) continue;
    out.push(name, value);
  }
  const clientIp = stripV4Mapped(peer);
  out.push('x-forwarded-for', xff ? `${xff}, ${clientIp}` : clientIp);
  out.push('x-forwarded-proto', proto ?? 'http');
  const fwdHost = xfHost ?? host;
  if (fwdHost !== undefined) out.push('x-forwarded-host', fwdHost);
  return out;
}

/** The response header list to send to the client, flat [name, value, …]. */
export function responseHeaders(raw: Buffer[]): string[] {
  const out: string[] = [];
  let extra: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    const lower = name.toLowerCase();
    if (lower === 'connection') { extra = connectionTokens(raw[i + 1]!.toString('latin1')); continue; }
    if (HOP_BY_HOP.has(lower)) continue;
    out.push(name, raw[i + 1]!.toString('latin1'));
  }
  if (extra === undefined) return out;
  return out.filter((_, i) => i % 2 === 1 ? !extra!.has(out[i - 1]!.toLowerCase()) : !extra!.has(out[i]!.toLowerCase()));
}

function stripV4Mapped(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}
