// What the conformance suite sends: a fixed corpus of request shapes (sizes around every
// buffer boundary, framing, status codes, 1xx, trailers, uploads, pipelining, HTTP/1.0, slow
// peers, big heads, odd targets) and a seeded random mix. Each case runs on fresh connections,
// its steps in order on one connection (or pipelined); the backend's answer depends only on
// the request (backend.js).
import type { Field, Request, Upload } from './wire.js';

export interface Case {
  name: string;
  steps: Request[];
  /** Write every step at once on one connection. */
  pipeline?: boolean;
  /** Run this many copies at the same time, each on its own connection. */
  parallel?: number;
  /** The first body byte must arrive within this many ms of the request (streaming, not buffered). */
  firstBodyWithinMs?: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

const get = (target: string, extra: Partial<Request> = {}): Request => ({ method: 'GET', target, ...extra });
const post = (target: string, body: Upload, extra: Partial<Request> = {}): Request => ({ method: 'POST', target, body, ...extra });
const one = (name: string, r: Request, more: Partial<Case> = {}): Case => ({ name, steps: [r], ...more });

/** Sizes at and around the buffer boundaries a proxy has: stream highWaterMarks (16 KiB on Node 20, 64 KiB later), socket reads (64 KiB), 1 MiB. */
export const BOUNDARY_SIZES = [
  0, 1, 2, 100, 1023, 1024, 4095, 4096, 8191, 8192, 16383, 16384, 16385, 32767, 32768, 32769,
  65535, 65536, 65537, 131071, 131072, 131073, 262144, 300 * KiB, 524288, MiB - 1, MiB, MiB + 1, 3 * MiB, 4 * MiB + 7,
];

export function fixedCorpus(): Case[] {
  const cases: Case[] = [];
  for (const size of BOUNDARY_SIZES) cases.push(one(`GET ${size} B, Content-Length`, get(`/cl?size=${size}&seed=${size % 97}`)));
  cases.push(one('GET 16 MiB, Content-Length', get(`/cl?size=${16 * MiB}&seed=5`)));
  for (const chunk of [1, 7, 100, 1000, 4096, 16383, 16384, 16385, 65535, 65536]) {
    const size = chunk < 100 ? 4 * KiB : chunk < 16 * KiB ? 256 * KiB : MiB;
    cases.push(one(`GET ${size} B chunked in ${chunk} B chunks`, get(`/chunked?te=chunked&size=${size}&chunk=${chunk}`)));
  }
  cases.push(one('GET 16 MiB chunked', get(`/chunked?te=chunked&size=${16 * MiB}&chunk=65536&seed=9`)));
  cases.push(one('GET chunked, empty body', get('/chunked?te=chunked&size=0')));
  for (const size of [0, 1000, 70000, 2 * MiB]) cases.push(one(`GET ${size} B close-delimited`, get(`/close?te=close&size=${size}`)));

  // Answers without a body.
  cases.push(one('HEAD of a 1 MiB Content-Length answer', { method: 'HEAD', target: `/cl?size=${MiB}` }));
  cases.push(one('HEAD of a chunked answer', { method: 'HEAD', target: '/chunked?te=chunked&size=5000' }));
  cases.push(one('HEAD then GET on one connection', { method: 'HEAD', target: '/cl?size=70000' }, { steps: [{ method: 'HEAD', target: '/cl?size=70000' }, get('/cl?size=70000')] }));
  cases.push(one('204 No Content', get('/s?status=204&te=chunked')));
  cases.push(one('304 Not Modified with ETag', get('/s?status=304&te=chunked', { headers: [['if-none-match', '"abc"']] })));
  cases.push(one('304 with the Content-Length of the representation', get('/s?status=304&size=1234')));
  for (const status of [201, 202, 301, 400, 404, 418, 500, 503]) cases.push(one(`status ${status} with a body`, get(`/s?status=${status}&size=321`)));
  cases.push(one('a reason phrase of the backend\'s own', get('/s?status=299&reason=Quite%20Fine%20Thanks&size=10')));

  // 1xx, Expect.
  cases.push(one('103 Early Hints before the answer', get('/hints?info=103&size=5000')));
  cases.push(one('102 Processing before the answer', get('/p?info=102&size=10')));
  cases.push(one('102 and 103 before a chunked answer', get('/both?info=both&te=chunked&size=9000')));
  cases.push(one('Expect: 100-continue upload of 1 MiB', post('/up?echo=1', { size: MiB, seed: 3 }, { expect100: true })));
  cases.push(one('Expect: 100-continue refused with 413 before the body', post('/up?reject=413', { size: 4 * MiB, seed: 3 }, { expect100: true })));
  cases.push(one('Expect: 100-continue refused with 417', post('/up?reject=417', { size: 1000, seed: 3 }, { expect100: true })));

  // Trailers, several Set-Cookie, repeated fields.
  cases.push(one('chunked answer with 2 trailers', get('/t?te=chunked&trailers=2&size=100000')));
  cases.push(one('chunked answer with trailers and no body', get('/t?te=chunked&trailers=3&size=0')));
  cases.push(one('TE: trailers from the client, trailers in the answer', get('/t?te=chunked&trailers=1&size=10', { headers: [['te', 'trailers'], ['connection', 'te']] })));
  cases.push(one('5 Set-Cookie fields', get('/c?cookies=5&size=10')));
  cases.push(one('a field repeated in three lines, mixed case', get('/d?dup=1&size=10')));

  // Uploads.
  for (const size of [0, 1, 16384, 65535, 65536, 65537, 131073, MiB, 16 * MiB]) {
    cases.push(one(`POST ${size} B by Content-Length`, post(`/up?size=${Math.min(size, 1000)}`, { size, seed: 7 })));
  }
  cases.push(one('POST 1 MiB echoed back', post('/up?echo=1', { size: MiB, seed: 8 })));
  cases.push(one('PUT 4 MiB echoed back, chunked', { method: 'PUT', target: '/up?echo=1&te=chunked', body: { size: 4 * MiB, seed: 9, chunk: 65536 } }));
  for (const chunk of [1, 1000, 16384, 65536]) {
    const size = chunk === 1 ? 2000 : chunk === 65536 ? 16 * MiB : 256 * KiB;
    cases.push(one(`POST ${size} B chunked in ${chunk} B chunks`, post('/up?size=10', { size, seed: chunk, chunk })));
  }
  cases.push(one('chunked POST with request trailers', post('/up?size=10', { size: 5000, seed: 2, chunk: 1000, trailers: [['x-checksum', 'abc'], ['x-more', '1']] })));
  cases.push(one('DELETE with a body', { method: 'DELETE', target: '/x?size=5', body: { size: 100, seed: 1 } }));
  cases.push(one('PATCH, OPTIONS, PUT in a row', get('/'), {
    steps: [{ method: 'PATCH', target: '/p?size=3', body: { size: 50, seed: 4 } }, { method: 'OPTIONS', target: '/o?size=0' }, { method: 'PUT', target: '/u?size=7', body: { size: 0, seed: 1 } }],
  }));

  // Pipelining.
  cases.push({ name: 'three pipelined GETs', pipeline: true, steps: [get('/a?size=10'), get('/b?size=20'), get('/c?size=30')] });
  cases.push({ name: 'pipelined GET, POST, HEAD, chunked GET, GET', pipeline: true,
    steps: [get('/1?size=100'), post('/2?echo=1', { size: 70000, seed: 1 }), { method: 'HEAD', target: '/3?size=999' }, get('/4?te=chunked&size=100000&chunk=333'), get('/5?size=0')] });
  cases.push({ name: 'three pipelined 1 MiB GETs', pipeline: true, steps: [get(`/a?size=${MiB}`), get(`/b?size=${MiB}&te=chunked`), get(`/c?size=${MiB}`)] });
  cases.push({ name: 'pipelined uploads by Content-Length, big and small, with GETs between', pipeline: true,
    steps: [post('/a?echo=1', { size: MiB, seed: 13 }), get('/b?size=10'), post('/c?echo=1', { size: 100 * KiB, seed: 14 }), post('/d?size=5', { size: 10, seed: 15 }), get('/e?size=70000')] });
  cases.push({ name: 'pipelined chunked uploads', pipeline: true, steps: [post('/a?echo=1', { size: 3000, seed: 1, chunk: 512 }), post('/b?echo=1', { size: 70000, seed: 2, chunk: 7000 })] });
  // A 1xx for a request queued behind a long answer goes after that answer, before its own head.
  cases.push({ name: 'a 1 MiB GET, then pipelined an Expect: 100-continue upload', pipeline: true,
    steps: [get(`/a?size=${MiB}`), post('/b?echo=1', { size: 1000, seed: 5 }, { expect100: true })] });
  cases.push({ name: 'a 1 MiB GET, then pipelined an Expect: 100-continue POST with no body', pipeline: true,
    steps: [get(`/a?size=${MiB}`), post('/b?size=27319&status=503', { size: 0, seed: 1 }, { expect100: true })] });
  cases.push({ name: 'a 1 MiB GET, then pipelined a GET with 103 Early Hints', pipeline: true,
    steps: [get(`/a?size=${MiB}`), get('/h?info=103&size=5000')] });
  cases.push({ name: 'keep-alive: ten requests of mixed sizes on one connection', steps: [0, 1, 16385, 65536, MiB, 5, 300 * KiB, 0, 65537, 2].map((s, i) => get(`/k${i}?size=${s}&te=${i % 2 ? 'chunked' : 'cl'}`)) });

  // HTTP/1.0.
  cases.push(one('HTTP/1.0 GET without keep-alive', get('/old?size=70000', { version: '1.0' })));
  cases.push(one('HTTP/1.0 GET of a chunked answer (sent close-delimited)', get('/old?te=chunked&size=70000', { version: '1.0' })));
  cases.push({ name: 'HTTP/1.0 with keep-alive, three requests', steps: [0, 1, 2].map((i) => get(`/old${i}?size=${1000 * i}`, { version: '1.0', headers: [['connection', 'keep-alive']] })) });
  cases.push(one('HTTP/1.0 POST', post('/old?echo=1', { size: 10000, seed: 5 }, { version: '1.0' })));
  cases.push(one('HTTP/1.0 HEAD', { method: 'HEAD', target: '/old?size=10', version: '1.0' }));

  // Streaming and slow peers.
  cases.push(one('SSE: the first event arrives before the next one is sent', get('/events?sse=4&every=400&te=chunked'), { firstBodyWithinMs: 300 }));
  cases.push(one('a slowly written chunked body streams through', get('/slow?te=chunked&size=20000&chunk=2000&gap=150'), { firstBodyWithinMs: 120 }));
  cases.push(one('slow reader of an 8 MiB answer', get(`/sr?size=${8 * MiB}`, { slowReadMs: 3 })));
  cases.push(one('slow reader of a 4 MiB chunked answer, then another request', get(`/sr?size=${4 * MiB}&te=chunked`, { slowReadMs: 3 }), { steps: [get(`/sr?size=${4 * MiB}&te=chunked`, { slowReadMs: 3 }), get('/after?size=70000')] }));
  // Not pumped (the client is not sent chunked): the parsed path's writes wait for the client.
  cases.push(one('slow HTTP/1.0 reader of a 4 MiB chunked answer (sent close-delimited)', get(`/sr10?size=${4 * MiB}&te=chunked&chunk=3000`, { version: '1.0', slowReadMs: 3 })));
  cases.push(one('slow writer: the head and a 64 KiB body in small pieces', post('/sw?size=10', { size: 64 * KiB, seed: 1 }, { slowWrite: { piece: 1500, gapMs: 1 } })));
  // Bodies under the pump's size are counted by the raw engine, not parsed: across many reads too.
  cases.push(one('a slowly written 20,000 B answer with a length, then another request', get('/slow?size=20000&chunk=1500&gap=5'), { steps: [get('/slow?size=20000&chunk=1500&gap=5'), get('/after?size=300')] }));
  cases.push(one('slow writer: a 5,000 B body in small pieces, then another request', post('/sw?size=10', { size: 5000, seed: 4 }, { slowWrite: { piece: 700, gapMs: 1 } }), { steps: [post('/sw?size=10', { size: 5000, seed: 4 }, { slowWrite: { piece: 700, gapMs: 1 } }), get('/after?size=300')] }));
  cases.push(one('slow writer: a head one byte at a time', get('/sw?size=100', { headers: [['x-a', 'b']], slowWrite: { piece: 1, gapMs: 1 } })));
  cases.push(one('backend slow to answer', get('/late?delay=300&size=1000')));
  cases.push(one('a big upload answered before it is read, then another request', get('/'), {
    steps: [post('/early?early=200', { size: 4 * MiB, seed: 12 }), get('/after?size=1000'), post('/early?early=201', { size: 70 * KiB, seed: 16 }), get('/after2?size=10')] }));
  cases.push(one('a backend that reads the upload slowly', post('/slowup?slowup=5&size=10', { size: 4 * MiB, seed: 6 })));

  // Parallel large transfers.
  cases.push({ name: '16 parallel 1 MiB downloads', parallel: 16, steps: [get(`/p?size=${MiB}`), get(`/p?size=${MiB}&te=chunked`)] });
  cases.push({ name: '8 parallel 2 MiB uploads echoed', parallel: 8, steps: [post('/p?echo=1', { size: 2 * MiB, seed: 11 })] });

  // Big heads, odd targets.
  cases.push(one('request head of ~15 KiB in 60 fields', get('/big?size=10', { headers: bigFields(60, 230) })));
  cases.push(one('95 request fields', get('/many?size=10', { headers: bigFields(95, 10) })));
  cases.push(one('answer head of ~14 KiB in 40 fields', get('/bigres?hdrs=40&hlen=330&size=10')));
  cases.push(one('an 8 KiB request target', get(`/long?size=10&pad=${'x'.repeat(8 * KiB)}`)));
  for (const target of ['/a%20b/%2F?x=%00&y=%E2%82%AC', '/p;param=1?q=1&q=2&size=3', '//double//slash?size=4', "/~user/!$&'()*+,;=:@?size=5", '/?', '/.well-known/x?size=6&a=b=c', 'http://conformance.test/absolute?size=7']) {
    cases.push(one(`odd but legal target ${target}`, get(target)));
  }
  cases.push(one('OPTIONS *', { method: 'OPTIONS', target: '*' }));
  for (const shape of ['no-reason', 'chunk-extensions', 'two-103s', 'http-1.0', 'obs-text', 'mixed-case', 'lower-reason']) {
    cases.push(one(`an answer Node would not write: ${shape}`, get(`/raw?raw=${shape}`)));
  }
  cases.push(one('header values with odd but legal bytes', get('/v?size=1', { headers: [['x-sp', 'a  b'], ['x-tab', 'a\tb'], ['x-quote', '"q\\"x"'], ['x-empty', ''], ['x-latin1', 'caf\u00e9']] })));
  return cases;
}

function bigFields(n: number, len: number): Field[] {
  return Array.from({ length: n }, (_, i) => [`x-field-${i}`, String.fromCharCode(97 + (i % 26)).repeat(len)] as Field);
}

/** mulberry32: a small seeded generator, so a failing random run can be replayed from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A size from 0 to `max`, mostly small: what real traffic looks like, with a tail of big ones. */
function size(r: () => number, max: number): number {
  const u = r();
  if (u < 0.15) return Math.floor(r() * 3);
  if (u < 0.25) return Math.min(max, BOUNDARY_SIZES[Math.floor(r() * BOUNDARY_SIZES.length)]!);
  return Math.min(max, Math.floor(Math.exp(r() * Math.log(max))));
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

/** One random request. `timing`: slow peers now and then. */
export function randomRequest(r: () => number, i: number, timing = true): Request {
  const method = pick(r, ['GET', 'GET', 'GET', 'GET', 'HEAD', 'POST', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);
  // HTTP/1.0 has no chunked uploads, no trailers, no 1xx, no Expect.
  const version = r() < 0.05 ? '1.0' : '1.1';
  const te = pick(r, ['cl', 'cl', 'chunked', 'chunked', 'close']);
  const status = r() < 0.85 ? 200 : pick(r, [201, 204, 304, 404, 500, 503]);
  const q = new URLSearchParams({ size: String(size(r, 4 * MiB)), seed: String(i), te, status: String(status) });
  // Small chunks and gaps between writes for small bodies only: a 4 MiB body in 1 B chunks
  // takes minutes and proves nothing the fixed corpus does not.
  const bodySize = Number(q.get('size'));
  const chunk = te === 'chunked' ? Math.max(pick(r, [1 + Math.floor(r() * 100), 1000, 4096, 16384, 65536]), Math.ceil(bodySize / 256)) : 65536;
  if (te === 'chunked') q.set('chunk', String(chunk));
  if (te === 'chunked' && version === '1.1' && r() < 0.2) q.set('trailers', String(1 + Math.floor(r() * 3)));
  if (r() < 0.1) q.set('cookies', String(1 + Math.floor(r() * 4)));
  if (version === '1.1' && r() < 0.05) q.set('info', pick(r, ['102', '103', 'both']));
  if (timing && r() < 0.03 && bodySize / chunk <= 64) q.set('gap', String(1 + Math.floor(r() * 5)));
  if (timing && r() < 0.03) q.set('delay', String(Math.floor(r() * 50)));
  const req: Request = { method, target: `/r${i}?${q}`, version };
  if (version === '1.0' && r() < 0.5) req.headers = [['connection', 'keep-alive']];
  if (method === 'POST' || method === 'PUT' || method === 'PATCH' || (method === 'DELETE' && r() < 0.3)) {
    const chunked = r() < 0.4;
    const up = size(r, 2 * MiB);
    req.body = { size: up, seed: i, ...(chunked && version === '1.1' ? { chunk: Math.max(pick(r, [7, 1000, 16384, 65536]), Math.ceil(up / 256)) } : {}) };
    if (req.body.chunk && r() < 0.1) req.body.trailers = [['x-sum', String(i)]];
    if (r() < 0.3) q.set('echo', '1'), (req.target = `/r${i}?${q}`);
    if (version === '1.1' && r() < 0.1) req.expect100 = true;
  }
  if (timing && r() < 0.03) req.slowReadMs = 1 + Math.floor(r() * 3);
  if (timing && r() < 0.02 && req.body && req.body.size < 200 * KiB) req.slowWrite = { piece: 4096, gapMs: 1 };
  return req;
}

/** Storm traffic: a third big uploads (echoed), a third big downloads, a third the random mix. */
export function stormRequest(r: () => number, i: number, timing: boolean): Request {
  const u = r();
  if (u < 1 / 3) {
    const size = 300 * KiB + Math.floor(r() * 2 * MiB);
    return post(`/su${i}?echo=${r() < 0.5 ? 1 : 0}&size=10`.replace('echo=0&', ''), { size, seed: i, ...(r() < 0.3 ? { chunk: 65536 } : {}) });
  }
  if (u < 2 / 3) return get(`/sd${i}?size=${MiB + Math.floor(r() * 3 * MiB)}&seed=${i}&te=${r() < 0.5 ? 'cl' : 'chunked'}&chunk=65536`);
  return randomRequest(r, i, timing);
}
