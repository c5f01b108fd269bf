// A line echo server for tcp mode (hotproxy as an L4 pipe; any protocol works the same way):
//   npx hotproxy --listen 8888 --mode tcp -- node examples/tcp-echo/server.js
// It takes its socket the systemd way (LISTEN_FDS: fds from 3 on, meant for LISTEN_PID), and
// binds $PORT itself when run alone. Each line comes back naming the generation that answered.
import net from 'node:net';

const inherited = Number(process.env.LISTEN_FDS) > 0 && Number(process.env.LISTEN_PID) === process.pid;
const where = inherited ? { fd: 3 } : { port: Number(process.env.PORT ?? 7000) };
const gen = process.env.HOTPROXY_GENERATION ?? '-';

const server = net.createServer({ allowHalfOpen: true }, (conn) => {
  let buf = '';
  conn.setEncoding('utf8');
  conn.on('data', (chunk) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      conn.write(`generation ${gen}, pid ${process.pid}: ${buf.slice(0, i)}\n`);
      buf = buf.slice(i + 1);
    }
  });
  // The client is done sending: finish our side too (half-close passes through tcp mode).
  conn.on('end', () => conn.end());
  conn.on('error', () => {});
});
server.listen(where, () => console.log(`echoing on ${inherited ? 'fd 3' : `port ${where.port}`}`));

// hotproxy sends SIGTERM once this generation's connections have closed: stop accepting and
// leave when the last connection (if any) ends.
process.on('SIGTERM', () => server.close(() => process.exit(0)));
