// The differential run: every request goes to the backend directly and through hotproxy, and
// the two answers must be the same — status, reason, end-to-end fields in order, 1xx answers,
// trailers, body length and hash, and (tcp mode) every byte but the Date value.
import { randomRequest, rng, type Case } from './corpus.js';
import { Conn, type Answer, type Field, type Request } from './wire.js';

// What a proxy may change: hop-by-hop and framing fields, Date, its own X-Forwarded-*.
const HOP = /^(connection|keep-alive|transfer-encoding|te|upgrade|proxy-connection|proxy-authenticate|proxy-authorization|date|x-forwarded-.*)$/;

export interface Compared {
  /** Exchanges whose answers were compared. */
  exchanges: number;
  /** One line per difference or failed exchange. */
  problems: string[];
}

const endToEnd = (fs: Field[]): Field[] => fs.filter(([k]) => !HOP.test(k));

function view(a: Answer, wire: boolean): Record<string, unknown> {
  return {
    error: a.error,
    status: a.status,
    reason: a.reason,
    headers: endToEnd(a.headers),
    info: a.info.map((i) => ({ status: i.status, headers: endToEnd(i.headers) })),
    trailers: endToEnd(a.trailers),
    bodyLength: a.bodyLength,
    bodyHash: a.bodyHash,
    ...(wire ? { wireHash: a.wireHash } : {}),
  };
}

/** Null when `proxied` is what `direct` was; else what differs. */
export function difference(direct: Answer, proxied: Answer, wire = false): string | null {
  if (proxied.error) return `proxied: ${proxied.error}`;
  if (direct.error) return `direct: ${direct.error}`;
  const d = view(direct, wire);
  const p = view(proxied, wire);
  const out: string[] = [];
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
export async function runCase(port: number, c: Case): Promise<Answer[]> {
  const copies = await Promise.all(Array.from({ length: c.parallel ?? 1 }, () => runSteps(port, c)));
  return copies.flat();
}

async function runSteps(port: number, c: Case): Promise<Answer[]> {
  let conn = new Conn(port);
  await conn.ready;
  try {
    if (c.pipeline) return await Promise.all(c.steps.map((s) => conn.send(s)));
    const out: Answer[] = [];
    for (const s of c.steps) {
      if (conn.closed) { conn = new Conn(port); await conn.ready; }
      const a = await conn.send(s);
      out.push(a);
      if (a.closes || a.error) conn.close();
    }
    return out;
  } finally {
    conn.close();
  }
}

/** Sends `c` both ways at once and compares. */
export async function compareCase(directPort: number, proxyPort: number, c: Case, wire = false): Promise<string[]> {
  const [d, p] = await Promise.all([runCase(directPort, c), runCase(proxyPort, c)]);
  const problems: string[] = [];
  d.forEach((a, i) => {
    const step = c.steps[i % c.steps.length]!;
    const diff = difference(a, p[i]!, wire);
    if (diff) problems.push(`${c.name} [${describe(step)}]: ${diff}`);
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
  wire?: boolean;
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
  const lane = async (l: number): Promise<void> => {
    const r = rng(o.seed * 1000 + l);
    while (more()) {
      const d = new Conn(directPort);
      const p = new Conn(proxyPort);
      await Promise.all([d.ready, p.ready]);
      const life = 1 + Math.floor(r() * (o.maxReuse ?? 20));
      try {
        for (let k = 0; k < life && more() && !d.closed && !p.closed;) {
          const burst = r() < 0.1 && !o.noPipelining ? 2 + Math.floor(r() * 3) : 1;
          const reqs: Request[] = [];
          for (let b = 0; b < burst && more(); b++, issued++) reqs.push((o.make ?? randomRequest)(r, serial++, o.timing ?? true));
          // Pipelined requests must leave the connection open and must not wait for a 100.
          const pipelined = reqs.length > 1 && reqs.every(pipelinable);
          const pairs = pipelined
            ? await Promise.all([Promise.all(reqs.map((q) => d.send(q))), Promise.all(reqs.map((q) => p.send(q)))])
            : await sequential(d, p, reqs);
          const [da, pa] = pairs;
          issued -= reqs.length - da.length; // not sent: an answer before them closed the connection
          for (let i = 0; i < da.length; i++) {
            result.exchanges++;
            const diff = difference(da[i]!, pa[i]!, o.wire);
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
  // Not 1xx either: Node's own server sends a queued response's head before its early hints
  // when requests are pipelined (it unshifts the head onto the buffered output), so the
  // direct answer is broken, not the proxied one.
  return (q.version ?? '1.1') === '1.1' && !q.expect100 && !q.slowWrite && !q.target.includes('te=close') && !q.target.includes('info=');
}

async function sequential(d: Conn, p: Conn, reqs: Request[]): Promise<[Answer[], Answer[]]> {
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
