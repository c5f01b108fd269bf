// Which side of a canary (`hotproxy reload --canary <percent>`) a client is on, sticky per
// client: a client that sends back the hotproxy-canary cookie stays where the cookie says; one
// without it is placed by a hash of its address (so a client that keeps no cookies still lands
// on the same side every time), and is told with a Set-Cookie so it stays put if its address
// changes. Clients behind one address (a NAT, a corporate proxy not in --trust-proxy) share a side.
import type { Canary } from '../ipc.js';

export const CANARY_COOKIE = 'hotproxy-canary';

export interface Placement {
  toCanary: boolean;
  /** The Set-Cookie field value to add to the answer, when the client did not send the cookie. */
  setCookie: string | undefined;
}

/** `cookies`: the request's Cookie field values; `address`: the client's address. */
export function place(canary: Canary, cookies: string[], address: string | undefined): Placement {
  const said = cookieValue(cookies, CANARY_COOKIE);
  // The value names the canary's generation: a cookie from an earlier canary counts for nothing.
  if (said === `c${canary.gen}`) return { toCanary: true, setCookie: undefined };
  if (said === `m${canary.gen}`) return { toCanary: false, setCookie: undefined };
  const toCanary = bucket(address ?? '') < canary.percent * 100;
  return { toCanary, setCookie: `${CANARY_COOKIE}=${toCanary ? 'c' : 'm'}${canary.gen}; Path=/; HttpOnly; SameSite=Lax` };
}

/** 0–9999, evenly spread (FNV-1a), the same for the same address in every worker. */
export function bucket(address: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < address.length; i++) {
    h ^= address.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // FNV's low bits spread worst; fold the high half in first.
  h ^= h >>> 16;
  return (h >>> 0) % 10_000;
}

function cookieValue(cookies: string[], name: string): string | undefined {
  for (const field of cookies) {
    for (const part of field.split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
    }
  }
  return undefined;
}

/** The Cookie field values of a request head as the raw engine sends it upstream. */
export function cookiesInHead(head: string): string[] {
  const out: string[] = [];
  for (const m of head.matchAll(/\r\ncookie:[ \t]*([^\r]*)/gi)) out.push(m[1]!);
  return out;
}
