// Minimal backend for the overhead benchmark: the cheapest possible HTTP response (12-byte
// body), so the numbers measure the proxy, not the app. Listens on the socket hotproxy hands
// over (SERVER_STARTER_PORT, fd after the last '=' of the first entry), else on 127.0.0.1:$PORT
// so that the direct baseline and HAProxy/nginx can reach the very same program.
//
// Paths: `/` 12 bytes; `/1m`, `/16m` that many MiB with a Content-Length, in one write;
// `/1m/chunked` 1 MiB without a length, in 16 KiB writes (Transfer-Encoding: chunked), the way
// a streaming app answers (`/1m/chunked/1k` in 1 KiB writes, `/1m/pieces/1k` the same with a length). Any request with a body (an upload) is read to its end and answered
// with 12 bytes.
import http from 'node:http';

const starter = process.env.SERVER_STARTER_PORT;
const where = starter
  ? { fd: Number(starter.split(';')[0].split('=').pop()) }
  : { host: '127.0.0.1', port: Number(process.env.PORT) };

const body = Buffer.from('hello world\n');
const sized = { '/1m': Buffer.alloc(1 << 20, 'x'), '/16m': Buffer.alloc(16 << 20, 'x') };
const piece = Buffer.alloc(16 << 10, 'y');
const small = Buffer.alloc(1 << 10, 'z');
const server = http.createServer((req, res) => {
  if (req.method === 'POST' || req.method === 'PUT') {
    req.on('data', () => {});
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
      res.end(body);
    });
    return;
  }
  // /1m/chunked: 64 writes of 16 KiB, no length; /1m/chunked/1k: 1,024 writes of 1 KiB;
  // /1m/pieces/1k: 1,024 writes of 1 KiB with a Content-Length.
  const m = /^\/1m\/(chunked|pieces)(?:\/(1k))?$/.exec(req.url);
  if (m) {
    const p = m[2] ? small : piece;
    res.writeHead(200, m[1] === 'pieces' ? { 'content-type': 'text/plain', 'content-length': 1 << 20 } : { 'content-type': 'text/plain' });
    for (let i = (1 << 20) / p.length; i > 0; i--) res.write(p);
    res.end();
    return;
  }
  const b = sized[req.url] ?? body;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': b.length });
  res.end(b);
});
// Longer than any proxy's upstream idle timeout: if the backend closed idle pooled connections
// first (Node's default is 5 s), a proxy could race it and report a spurious 502.
server.keepAliveTimeout = 120_000;
server.listen(where);

process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 5_000).unref();
});
