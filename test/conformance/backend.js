// The conformance backend: a plain Node http server whose answer depends only on the request,
// so the same request sent directly and through hotproxy must get the same answer. What it
// answers is chosen by the query string (see README in this folder); every answer carries
// `x-req`, a digest of the request as it arrived (method, target, end-to-end fields, body,
// trailers), so a proxy that changes a request shows up too.
//
// Under hotproxy it serves the inherited socket (fd from SERVER_STARTER_PORT); run alone it
// listens on a free loopback port and prints `listening <port>`.
import { createHash } from 'node:crypto';
import http from 'node:http';
import { block, bytes } from './bytes.js';

// Fields a proxy may change: hop-by-hop, its own, and the expectation it may answer itself.
const SKIP = /^(connection|keep-alive|te|transfer-encoding|upgrade|proxy-.*|x-forwarded-.*|x-request-id|expect|date)$/i;

const BLOCK = block(0x9e3779b9);
const answerBytes = (size, seed, piece) => bytes(BLOCK, size, seed, piece, 7919);

const int = (q, k, d = 0) => (q.has(k) ? Number(q.get(k)) : d);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function digest(req, body, trailers) {
  const fields = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (!SKIP.test(req.rawHeaders[i])) fields.push(req.rawHeaders[i].toLowerCase(), req.rawHeaders[i + 1]);
  }
  const h = createHash('sha256').update(JSON.stringify([req.method, req.url, fields, trailers]));
  return `${body.length}:${h.update(body).digest('hex').slice(0, 32)}`;
}

/** `x-seen-proto`, first in every answer made here: the X-Forwarded-Proto a proxy added, if any. */
const seenProto = (req) => (req.headers['x-forwarded-proto'] === undefined ? [] : [['x-seen-proto', req.headers['x-forwarded-proto']]]);

/**
 * Writes the body (`piece` bytes a write, `gap` ms between writes). Each write is awaited: Node
 * 22+ merges writes that queue up into one chunk, and tcp mode compares the framing too.
 */
async function writeBody(res, size, seed, piece, gap) {
  for (const chunk of answerBytes(size, seed, piece)) {
    await new Promise((resolve, reject) => res.write(chunk, (err) => (err ? reject(err) : resolve())));
    if (gap > 0) await sleep(gap);
  }
}

async function answer(req, res, body) {
  const q = new URL(req.url, 'http://x').searchParams;
  const size = int(q, 'size');
  const seed = int(q, 'seed', 1);
  const te = q.get('te') ?? 'cl';
  const status = int(q, 'status', 200);
  if (int(q, 'delay') > 0) await sleep(int(q, 'delay'));
  const info = q.get('info');
  // Node writes a queued response's head before its 1xx (a request that arrived before the
  // previous response finished): wait until this response owns the socket.
  if (info && !res.socket) await new Promise((r) => res.once('socket', r));
  if (info === '103' || info === 'both') res.writeEarlyHints({ link: ['</a.css>; rel=preload; as=style', '</b.js>; rel=preload; as=script'], 'x-hint': 'early' });
  if (info === '102' || info === 'both') res.writeProcessing();

  const headers = [...seenProto(req), ['x-req', digest(req, body, req.rawTrailers)], ['content-type', q.has('sse') ? 'text/event-stream' : 'application/octet-stream']];
  for (let i = 0; i < int(q, 'cookies'); i++) headers.push(['set-cookie', `c${i}=v${i}; Path=/; HttpOnly`]);
  for (let i = 0; i < int(q, 'hdrs'); i++) headers.push([`x-h${i}`, 'v'.repeat(int(q, 'hlen', 16))]);
  if (q.has('dup')) headers.push(['x-dup', 'one'], ['X-Dup', 'two'], ['x-dup', 'three']);
  // Trailers need a chunked body (Node throws on a Trailer field otherwise).
  const bodyless = req.method === 'HEAD' || status === 204 || status === 304;
  const trailers = te === 'chunked' && !bodyless ? int(q, 'trailers') : 0;
  if (trailers > 0) headers.push(['trailer', Array.from({ length: trailers }, (_, i) => `x-t${i}`).join(', ')]);
  const echo = q.has('echo');
  const len = echo ? body.length : size;

  if (te === 'close') { closeDelimited(req, res, status, headers, len, seed, body, echo); return; }
  if (q.has('sse')) headers.push(['cache-control', 'no-cache']);
  if (te === 'cl') headers.push(['content-length', String(len)]);
  const flat = headers.flat();
  res.writeHead(status, q.get('reason') ?? undefined, flat);
  if (q.has('sse')) {
    for (let i = 0; i < int(q, 'sse'); i++) {
      res.write(`id: ${i}\ndata: event ${i}\n\n`);
      await sleep(int(q, 'every', 20));
    }
  } else if (echo) {
    res.write(body);
  } else if (req.method !== 'HEAD' && status !== 204 && status !== 304) {
    await writeBody(res, size, seed, int(q, 'chunk', 64 * 1024), int(q, 'gap'));
  }
  if (trailers > 0) res.addTrailers(Array.from({ length: trailers }, (_, i) => [`x-t${i}`, `trailer value ${i}`]));
  res.end();
}

/** A response with neither Content-Length nor chunking: the body ends when the connection does. */
function closeDelimited(req, res, status, headers, len, seed, body, echo) {
  const sock = req.socket;
  let head = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Unknown'}\r\nconnection: close\r\n`;
  for (const [k, v] of headers) head += `${k}: ${v}\r\n`;
  sock.write(`${head}\r\n`);
  if (req.method === 'HEAD' || status === 204 || status === 304) { /* no body */ }
  else if (echo) sock.write(body);
  else for (const c of answerBytes(len, seed, 64 * 1024)) sock.write(c);
  sock.end();
}

/** Answers written byte by byte, for shapes Node's server never makes itself. */
const RAW = {
  'no-reason': 'HTTP/1.1 200 \r\ncontent-length: 5\r\n\r\nhello',
  'chunk-extensions': 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n6;x\r\n world\r\n0\r\n\r\n',
  'two-103s': 'HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload; as=style\r\n\r\n' +
    'HTTP/1.1 103 Early Hints\r\nlink: </b.js>; rel=preload; as=script\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok',
  'http-1.0': 'HTTP/1.0 200 OK\r\ncontent-length: 3\r\n\r\nabc',
  'obs-text': 'HTTP/1.1 200 OK\r\nx-latin1: caf\xe9\r\ncontent-length: 2\r\n\r\nok',
  'mixed-case': 'HTTP/1.1 201 Created\r\nX-Mixed-Case: A\r\nCONTENT-LENGTH: 4\r\nLocation: /x\r\n\r\nmade',
  'lower-reason': 'HTTP/1.1 404 not here, sorry\r\ncontent-length: 0\r\n\r\n',
};

const server = http.createServer({ maxHeaderSize: 64 * 1024, requestTimeout: 0, headersTimeout: 0 }, (req, res) => {
  const q = new URL(req.url, 'http://x').searchParams;
  // `early=<status>`: answer at once, the body unread (Node's server reads and drops the rest).
  if (q.has('early')) {
    res.writeHead(int(q, 'early'), [...seenProto(req), ['content-length', '2'], ['x-req', digest(req, Buffer.alloc(0), [])]].flat());
    res.end('ok');
    return;
  }
  const parts = [];
  req.on('data', (c) => parts.push(c));
  req.on('end', () => {
    const raw = RAW[q.get('raw') ?? ''];
    if (raw !== undefined) { req.socket.end(Buffer.from(raw, 'latin1')); return; }
    answer(req, res, Buffer.concat(parts)).catch((err) => { console.error(err); res.destroy(); });
  });
  // Slow reader of the request: pause now and then while the client uploads.
  if (q.has('slowup')) {
    req.on('data', () => { req.pause(); setTimeout(() => req.resume(), int(q, 'slowup')); });
  }
});

// `reject=<status>`: answer an Expect: 100-continue at once, without reading the body.
server.on('checkContinue', (req, res) => {
  const q = new URL(req.url, 'http://x').searchParams;
  if (!q.has('reject')) {
    // Not before the response owns the socket: Node's server writes a queued response's head
    // before a 100 it buffered (a request read before the last answer's write completed).
    const go = () => { res.writeContinue(); server.emit('request', req, res); };
    if (res.socket) go(); else res.once('socket', go);
    return;
  }
  const status = int(q, 'reject');
  res.writeHead(status, [...seenProto(req), ['content-length', '0'], ['x-req', digest(req, Buffer.alloc(0), [])], ['connection', 'close']].flat());
  res.end();
});

const starter = process.env.SERVER_STARTER_PORT;
if (starter) {
  server.listen({ fd: Number(starter.split(';')[0].split('=').pop()) });
} else {
  server.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
}

process.on('SIGTERM', () => {
  // hotproxy has stopped sending requests and closed its connections by now.
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 5_000).unref();
});
