// One access-log line: what it says of a request (the engines fill an AccessEntry in as the
// exchange goes) and how it is spelled, one JSON object per line. The writer is access-log.ts.

/** Who ended a request before its answer was complete. */
export type Cut = 'client' | 'backend';

/** What a line says of one request; the engines fill it in as the exchange goes. */
export interface AccessEntry {
  method: string;
  /** The request target as the client sent it. */
  url: string;
  /** The status sent to the client; 0: none was. */
  status: number;
  /** Body bytes sent to the client. */
  bytes: number;
  /** process.hrtime.bigint() at the request's start, and at the first byte of the backend's answer (0n: none came). */
  t0: bigint;
  ttfb: bigint;
  /** The generation and pid of the instance the request last went to; 0: none. */
  gen: number;
  pid: number;
  /** How often the request was sent to a backend. */
  tries: number;
  client: string;
  requestId: string;
  userAgent: string | undefined;
  /** Set when the answer was not complete. */
  cut: Cut | undefined;
}

const ms = (ns: bigint): number => Math.round(Number(ns) / 1e3) / 1e3;

// toISOString costs more than the rest of a line together; its first 20 characters change once a second.
let isoSecond = NaN;
let isoPrefix = '';
function iso(t: number): string {
  const s = Math.floor(t / 1000);
  if (s !== isoSecond) { isoSecond = s; isoPrefix = new Date(s * 1000).toISOString().slice(0, 20); }
  const m = t - s * 1000;
  return `${isoPrefix}${m < 10 ? '00' : m < 100 ? '0' : ''}${m}Z`;
}

/** One line, ending in a newline. `end`: hrtime now; `now`: Date.now(). */
export function formatLine(e: AccessEntry, end: bigint, now: number): string {
  const duration = ms(end - e.t0);
  // Method and address come from fixed tables (llhttp's methods, the kernel's address); the
  // rest is as the client or a trusted proxy sent it, so it is escaped.
  let line = `{"time":"${iso(Math.round(now - duration))}","method":"${e.method}","target":${JSON.stringify(e.url)}`
    + `,"status":${e.status},"bytes":${e.bytes},"durationMs":${duration},"ttfbMs":${e.ttfb === 0n ? null : ms(e.ttfb - e.t0)}`
    + `,"gen":${e.gen || null},"instance":${e.pid || null},"attempts":${e.tries},"client":${e.client ? `"${e.client}"` : null}`
    + `,"requestId":${JSON.stringify(e.requestId)},"userAgent":${e.userAgent === undefined ? null : JSON.stringify(e.userAgent)}`;
  if (e.cut !== undefined) line += `,"cut":"${e.cut}"`;
  return `${line}}\n`;
}
