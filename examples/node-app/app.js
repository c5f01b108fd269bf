// A plain Node server on the hotproxy/app helper: it serves on the socket hotproxy hands it
// (or on $PORT, default 3000, when run alone) and drains without resetting anyone on SIGTERM.
//   npx hotproxy --listen 8888 -- node examples/node-app/app.js
import http from 'node:http';
import { listen } from 'hotproxy/app';

const generation = process.env.HOTPROXY_GENERATION ?? '-';
const server = http.createServer((req, res) => res.end(`hello from node-app, generation ${generation}, pid ${process.pid}\n`));
const { address } = await listen(server);
console.log('listening on', address);
