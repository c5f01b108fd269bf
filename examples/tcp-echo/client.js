// Sends each argument as a line on one connection and prints the replies:
//   node examples/tcp-echo/client.js hello world      (PORT=8888 by default)
import net from 'node:net';

const lines = process.argv.slice(2);
if (lines.length === 0) lines.push('hello');
const conn = net.connect(Number(process.env.PORT ?? 8888), process.env.HOST ?? '127.0.0.1');
conn.setEncoding('utf8');
conn.on('data', (d) => process.stdout.write(d));
conn.on('error', (err) => {
  console.error(`tcp-echo client: ${err.message}`);
  process.exitCode = 1;
});
// Half-close after the last line: the server answers everything, then closes its side.
conn.end(lines.map((l) => `${l}\n`).join(''));
