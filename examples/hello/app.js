// An ordinary Node server that serves on the socket hotproxy hands it (fd 3, announced in
// SERVER_STARTER_PORT), or on $PORT when run alone: `node examples/hello/app.js`.
import http from 'node:http';
import net from 'node:net';

const starter = process.env.SERVER_STARTER_PORT;
const where = starter ? { fd: Number(starter.split(';')[0].split('=').pop()) } : { port: Number(process.env.PORT ?? 3000) };
const gen = process.env.SERVER_STARTER_GENERATION ?? '-';

let draining = false;
const server = http.createServer((req, res) => {
  if (draining) res.setHeader('connection', 'close');
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(`hello from generation ${gen}, pid ${process.pid}\n`);
});
server.listen(where, () => console.log(`listening on ${starter ?? where.port}`));

// Drain without resetting anyone: stop accepting, close keep-alive connections as their
// next response goes out, and close whatever is still idle after a grace period.
process.on('SIGTERM', () => {
  draining = true;
  net.Server.prototype.close.call(server);
  setTimeout(() => server.closeAllConnections(), 1000).unref();
  server.closeIdleConnections();
});
