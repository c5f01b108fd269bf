// Minimal backend for the overhead benchmark: the cheapest possible HTTP response (12-byte
// body), so the numbers measure the proxy, not the app. Listens on the socket hotproxy hands
// over (SERVER_STARTER_PORT, fd after the last '=' of the first entry), else on 127.0.0.1:$PORT
// so that the direct baseline and HAProxy/nginx can reach the very same program.
import http from 'node:http';

const starter = process.env.SERVER_STARTER_PORT;
const where = starter
  ? { fd: Number(starter.split(';')[0].split('=').pop()) }
  : { host: '127.0.0.1', port: Number(process.env.PORT) };

const body = Buffer.from('hello world\n');
// `/1m`: a 1 MiB answer, for what a proxy costs per byte rather than per request.
const big = Buffer.alloc(1 << 20, 'x');
const server = http.createServer((req, res) => {
  const b = req.url === '/1m' ? big : body;
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
