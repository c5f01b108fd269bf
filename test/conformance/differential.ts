// The differential run: every request goes to the backend directly and through hotproxy, and
// the two answers must be the same — status, reason, end-to-end fields in order, 1xx answers,
// trailers, body length and hash, and (tcp mode) every byte but the Date value. Through TLS the
// same holds; over HTTP/2 only what HTTP/2 itself changes is normalised (view, normalise).
import { randomRequest, rng, type Case } from './corpus.js';
import { Conn, type Answer, type Field, type Request } from './wire.js';
import { asH2, CONNECTION_SPECIFIC, H2Conn, tlsH1 } from './h2-client.js';

/** How the proxied side is reached and what it may say differently (a mode of harness.ts). */
export interface Via {
  /** Compare every byte (tcp mode), not only what HTTP says. */
  wire?: boolean;
  /** The client to hotproxy: HTTP/1.x over TLS, or HTTP/2 over TLS; absent: plain HTTP/1.x. */
  client?: 'https' | 'h2';
  /** X-Forwarded-Proto the backend must have been given through hotproxy (absent: none). */
  proto?: 'http' | 'https';
}

/** A client connection: wire.ts's Conn, or an HTTP/2 session. */
export interface Client {
  readonly ready: Promise<void>;
  readonly closed: boolean;
  send(r: Request): Promise<Answer>;
  close(): void;
}

/** The backend echoes the X-Forwarded-Proto it got in this field, first (backend.js). */
const SEEN_PROTO = 'x-seen-proto';

const directClient = (port: number): Client => new Conn(port);
const proxiedClient = (port: number, via: Via): Client =>
  via.client === 'h2' ? new H2Conn(port) : via.client === 'https' ? new Conn(port, undefined, tlsH1) : new Conn(port);
/** The request both sides get: over h2, what HTTP/2 can express of it. */
const shaped = (r: Request, via: Via): Request => (via.client === 'h2' ? asH2(r) : r);

// What a proxy may change: hop-by-hop and framing fields, Date, its own X-Forwarded-*.
const HOP = /^(connection|keep-alive|transfer-encoding|te|upgrade|proxy-connection|proxy-authenticate|proxy-authorization|date|x-forwarded-.*)$/;

export interface Compared {
  /** Exchanges whose answers were compared. */
  exchanges: number;
  /** One line per difference or failed exchange. */
  problems: string[];
}

const endToEnd = (fs: Field[]): Field[] => fs.filter(([k]) => !HOP.test(k));

function view(a: Answer, via: Via): Record<string, unknown> {
  return {
    error: a.error,
    status: a.status,
    // HTTP/2 has no reason phrase.
    ...(via.client === 'h2' ? {} : { reason: a.reason }),
    headers: endToEnd(a.headers),
    info: a.info.map((i) => ({ status: i.status, headers: endToEnd(i.headers) })),
    trailers: endToEnd(a.trailers),
    bodyLength: a.bodyLength,
    bodyHash: a.bodyHash,
    ...(via.wire ? { wireHash: a.wireHash } : {}),
  };
}

/**
 * What hotproxy's own differences must be, checked and then taken out: the X-Forwarded-Proto
 * the backend saw (echoed first in every answer it makes itself, those with x-req), and over
 * h2 no connection-specific field anywhere.
 */
function normalise(direct: Answer, proxied: Answer, via: Via, out: string[]): Answer {
  const seen = proxied.headers.filter(([k]) => k === SEEN_PROTO);
  const made = direct.headers.some(([k]) => k === 'x-req');
  if (direct.headers.some(([k]) => k === SEEN_PROTO)) out.push(`direct: ${SEEN_PROTO} without a proxy`);
  const want = via.proto !== undefined && made ? [[SEEN_PROTO, via.proto]] : [];
  if (JSON.stringify(seen) !== JSON.stringify(want) || (want.length > 0 && proxied.headers[0]![0] !== SEEN_PROTO)) {
    out.push(`X-Forwarded-Proto the backend saw: ${JSON.stringify(seen)}, expected ${JSON.stringify(want)}`);
  }
  if (via.client === 'h2') {
    const all = [...proxied.headers, ...proxied.trailers, ...proxied.info.flatMap((i) => i.headers)];
    const bad = all.filter(([k]) => CONNECTION_SPECIFIC.test(k));
    if (bad.length) out.push(`connection-specific fields over h2: ${JSON.stringify(bad)}`);
  }
  return { ...proxied, headers: proxied.headers.filter(([k]) => k !== SEEN_PROTO) };
}

/** Null when `proxied` is what `direct` was; else what differs. */
export function difference(direct: Answer, proxied: Answer, via: Via = {}): string | null {
  if (proxied.error) return `proxied: ${proxied.error}`;
  if (direct.error) return `direct: ${direct.error}`;
  const out: string[] = [];
  // Over h2 a 204 carries no Content-Length (RFC 9110 §8.6: HTTP/2 peers reset such a stream).
  const d = view(via.client === 'h2' && direct.status === 204 ? { ...direct, headers: direct.headers.filter(([k]) => k !== 'content-length') } : direct, via);
  const p = view(normalise(direct, proxied, via, out), via);
  for (const k of Object.keys(d)) {
    const a = JSON.stringify(d[k]);
    const b = JSON.stringify(p[k]);
    if (a !== b) out.push(`${k}: direct ${clip(a)} proxied ${clip(b)}`);
  }
  return out.length ? out.join('; ') : null;
}

const clip = (s: string | undefined): string => (s && s.length > 300 ? `${s.slice(0, 300)}…` : String(s));

export function describe(r: Request): string {
  const b = r.body ? ` body ${r.body.size}${r.body.chunk ? ` chunked/${r.body.chunk}` : ''}${r.body.trailers ? '+trailers' : ''}` : '';
  return `${r.method} ${r.target.length > 120 ? `${r.target.slice(0, 120)}…` : r.target} HTTP/${r.version ?? '1.1'}${b}${r.expect100 ? ' expect' : ''}${r.slowReadMs ? ' slow-read' : ''}${r.slowWrite ? ' slow-write' : ''}`;
}

/** Runs a case's steps on fresh connections to `port`; one answer per step (per copy). */
export async function runCase(open: () => Client, c: Case, via: Via): Promise<Answer[]> {
  const copies = await Promise.all(Array.from({ length: c.parallel ?? 1 }, () => runSteps(open, c, via)));
  return copies.flat();
}

/** A case's steps in order on one connection; pipelined (over h2: concurrent streams of one session). */
async function runSteps(open: () => Client, c: Case, via: Via): Promise<Answer[]> {
  let conn = open();
  await conn.ready;
  try {
    if (c.pipeline) return await Promise.all(c.steps.map((s) => conn.send(shaped(s, via))));
    const out: Answer[] = [];
    for (const s of c.steps) {
      if (conn.closed) { conn = open(); await conn.ready; }
      const a = await conn.send(shaped(s, via));
      out.push(a);
      if (a.closes || a.error) conn.close();
    }
    return out;
  } finally {
    conn.close();
  }
}

/** Sends `c` both ways at once and compares. */
export async function compareCase(directPort: number, proxyPort: number, c: Case, via: Via = {}): Promise<string[]> {
  const [d, p] = await Promise.all([runCase(() => directClient(directPort), c, via), runCase(() => proxiedClient(proxyPort, via), c, via)]);
  const problems: string[] = [];
  d.forEach((a, i) => {
    const step = c.steps[i % c.steps.length]!;
    const diff = difference(a, p[i]!, via);
    if (diff) problems.push(`${c.name} [${describe(shaped(step, via))}]: ${diff}`);
    if (c.firstBodyWithinMs !== undefined && !(p[i]!.firstBodyMs >= 0 && p[i]!.firstBodyMs <= c.firstBodyWithinMs)) {
      problems.push(`${c.name}: first body byte after ${p[i]!.firstBodyMs} ms through hotproxy (direct ${a.firstBodyMs} ms), more than ${c.firstBodyWithinMs}`);
    }
  });
  return problems;
}

export interface RandomOptions {
  seed: number;
  /** Stop after this many exchanges in all (or when `until` says so). */
  exchanges: number;
  lanes: number;
  /** Slow peers now and then. */
  timing?: boolean;
  /** How the proxied side is reached. */
  via?: Via;
  until?: () => boolean;
  /** Keep connections for at most this many exchanges (tcp mode: lets old generations drain). */
  maxReuse?: number;
  /** Every request alone, none pipelined. */
  noPipelining?: boolean;
  /** Filled as the run goes (to watch it), and returned. */
  live?: Compared;
  /** The request generator (default randomRequest). */
  make?: (r: () => number, serial: number, timing: boolean) => Request;
}

/**
 * The seeded random run: `lanes` keep-alive lanes, each a pair of connections (direct and
 * through hotproxy) that see the same requests — alone, or pipelined in bursts — and are
 * reopened when an answer closes them or after a random number of exchanges.
 */
export async function randomRun(directPort: number, proxyPort: number, o: RandomOptions): Promise<Compared> {
  const result: Compared = o.live ?? { exchanges: 0, problems: [] };
  // `issued`: sent or about to be; `serial` names requests (and seeds their bodies).
  let issued = 0;
  let serial = 0;
  const more = (): boolean => issued < o.exchanges && !(o.until?.() ?? false);
  const via = o.via ?? {};
  const lane = async (l: number): Promise<void> => {
    const r = rng(o.seed * 1000 + l);
    while (more()) {
      const d = directClient(directPort);
      const p = proxiedClient(proxyPort, via);
      await Promise.all([d.ready, p.ready]);
      const life = 1 + Math.floor(r() * (o.maxReuse ?? 20));
      try {
        for (let k = 0; k < life && more() && !d.closed && !p.closed;) {
          const burst = r() < 0.1 && !o.noPipelining ? 2 + Math.floor(r() * 3) : 1;
          const reqs: Request[] = [];
          for (let b = 0; b < burst && more(); b++, issued++) reqs.push(shaped((o.make ?? randomRequest)(r, serial++, o.timing ?? true), via));
          // Pipelined requests must leave the connection open and must not wait for a 100.
          const pipelined = reqs.length > 1 && reqs.every(pipelinable);
          const pairs = pipelined
            ? await Promise.all([Promise.all(reqs.map((q) => d.send(q))), Promise.all(reqs.map((q) => p.send(q)))])
            : await sequential(d, p, reqs);
          const [da, pa] = pairs;
          issued -= reqs.length - da.length; // not sent: an answer before them closed the connection
          for (let i = 0; i < da.length; i++) {
            result.exchanges++;
            const diff = difference(da[i]!, pa[i]!, via);
            if (diff) result.problems.push(`seed ${o.seed} lane ${l} [${describe(reqs[i]!)}]: ${diff}`);
            if (da[i]!.closes || pa[i]!.closes || da[i]!.error || pa[i]!.error) k = life;
          }
          k += reqs.length;
        }
      } finally {
        d.close();
        p.close();
      }
    }
  };
  await Promise.all(Array.from({ length: o.lanes }, (_, l) => lane(l)));
  return result;
}

function pipelinable(q: Request): boolean {
  // 1xx may be pipelined: the backend writes one only once its answer owns the socket (Node's
  // server would otherwise put a queued answer's head before it).
  return (q.version ?? '1.1') === '1.1' && !q.expect100 && !q.slowWrite && !q.target.includes('te=close');
}

async function sequential(d: Client, p: Client, reqs: Request[]): Promise<[Answer[], Answer[]]> {
  const da: Answer[] = [];
  const pa: Answer[] = [];
  for (const q of reqs) {
    const [a, b] = await Promise.all([d.send(q), p.send(q)]);
    da.push(a);
    pa.push(b);
    if (a.closes || b.closes || a.error || b.error) break;
  }
  return [da, pa];
}
