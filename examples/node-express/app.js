// Express 5 on the socket hotproxy hands it:
//   npx hotproxy --listen 8888 -- node examples/node-express/app.js
// app.listen passes its arguments to http.Server#listen, so `{ fd }` serves the inherited,
// already listening socket; alone (`PORT=3000 node examples/node-express/app.js`) it binds $PORT.
import express from 'express';

// Server::Starter's "<addr>=<fd>" or systemd's LISTEN_FDS (fds from 3 on, meant for LISTEN_PID).
function inheritedFd() {
  const starter = process.env.SERVER_STARTER_PORT;
  if (starter) return Number(starter.split(';')[0].split('=').pop());
  if (Number(process.env.LISTEN_FDS) > 0 && Number(process.env.LISTEN_PID) === process.pid) return 3;
  return undefined;
}

const fd = inheritedFd();
const where = fd === undefined ? { port: Number(process.env.PORT ?? 3000) } : { fd };
const gen = process.env.HOTPROXY_GENERATION ?? '-';

let draining = false;
const app = express();
app.use((req, res, next) => {
  if (draining) res.set('Connection', 'close');
  next();
});
app.get('/', (req, res) => {
  res.type('text/plain').send(`hello from Express, generation ${gen}, pid ${process.pid}\n`);
});

const server = app.listen(where, (err) => {
  if (err) throw err;
  console.log(`listening on ${fd === undefined ? `port ${where.port}` : `fd ${fd}`}`);
});

// hotproxy has stopped routing to this generation when SIGTERM comes; an app that serves other
// clients too drains like this: stop accepting, close keep-alive connections as their next
// response goes out, and close whatever is still idle.
process.on('SIGTERM', () => {
  draining = true;
  server.close(); // also closes the idle keep-alive connections
  setTimeout(() => server.closeAllConnections(), 1000).unref();
});
