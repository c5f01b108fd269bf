import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startHotproxy } from './helpers/hotproxy.js';
import { waitFor } from './helpers/wait.js';
import { has } from '../src/internals/index.js';

// Where this Node lacks the internal the raw engine parses with, --engine raw gets the node
// engine: these tests are then skipped, not passed against the wrong engine.
const RAW = has('http-parser');
if (!RAW) console.warn('skipping raw engine tests: this Node lacks the http-parser internal (src/internals), so --engine raw would serve with the node engine');

// A backend with the responses the engine must frame specially.
const dir = mkdtempSync(join(tmpdir(), 'hp-raw-'));
const APP = join(dir, 'app.mjs');
writeFileSync(APP, `
import http from 'node:http';
const fd = Number(process.env.SERVER_STARTER_PORT.split(';')[0].split('=').pop());
let seen = 0;
http.createServer((req, res) => {
  seen++;
  const parts = [];
  req.on('data', (c) => parts.push(c)).on('end', () => {
    const body = Buffer.concat(parts).toString();
    switch (req.url) {
      case '/304': res.writeHead(304, { etag: '"x"' }); res.end(); return;
      case '/204': res.writeHead(204); res.end(); return;
      case '/chunked': res.write('part1,'); setTimeout(() => res.end('part2'), 20); return;
      case '/seen': res.end(String(seen)); return;
      // More than the Content-Length says: a misbehaving backend (past the hop, Node's server never sees it).
      case '/overlong': req.socket.write('HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\n\\r\\nhelloHTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\n\\r\\nbogus'); return;
      default: res.setHeader('content-length', Buffer.byteLength(req.method + ' ' + req.url + ' ' + body)); res.end(req.method + ' ' + req.url + ' ' + body);
    }
  });
}).listen({ fd });
`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const start = () => startHotproxy(['--engine', 'raw'], ['node', APP]);

/** Sends `data` on a new connection; resolves with everything received until `done(text)` or the close. */
async function exchange(port: number, data: string | string[], done: (text: string) => boolean = () => false): Promise<{ text: string; closed: boolean }> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  let text = '';
  let closed = false;
  sock.on('data', (d) => (text += d.toString('latin1')));
  sock.on('close', () => (closed = true));
  sock.on('error', () => {});
  for (const d of Array.isArray(data) ? data : [data]) {
    sock.write(d);
    await new Promise((r) => setTimeout(r, 20));
  }
  await waitFor(() => closed || done(text), 'the response');
  sock.destroy();
  return { text, closed };
}

const count = (text: string, s: string): number => text.split(s).length - 1;

describe.skipIf(!RAW)('raw engine', () => {
  it('answers pipelined requests on one connection in order', async () => {
    const hp = await start();
    const { text, closed } = await exchange(hp.port,
      'GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.1\r\nHost: x\r\n\r\n',
      (t) => count(t, 'HTTP/1.1 200') === 3 && t.endsWith('GET /c '));
    expect(closed).toBe(false);
    expect(text.indexOf('GET /a ')).toBeLessThan(text.indexOf('POST /b abc'));
    expect(text.indexOf('POST /b abc')).toBeLessThan(text.indexOf('GET /c '));
    await hp.stop();
  });

  it('sends no body for HEAD, 204 and 304, and the connection stays usable', async () => {
    const hp = await start();
    const { text } = await exchange(hp.port,
      'HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n',
      (t) => t.endsWith('GET /after '));
    const responses = text.split(/(?=HTTP\/1\.1 )/);
    expect(responses.map((r) => r.slice(9, 12))).toEqual(['200', '204', '304', '200']);
    expect(responses[0]).toMatch(/content-length: 8\r\n/i);
    for (const r of responses.slice(0, 3)) expect(r.endsWith('\r\n\r\n')).toBe(true);
    expect(responses[3]!.endsWith('\r\n\r\nGET /after ')).toBe(true);
    await hp.stop();
  });

  it('re-chunks a chunked upload and a response without a length', async () => {
    const hp = await start();
    const up = await exchange(hp.port, [
      'POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n',
      '5\r\nhello\r\n', '6\r\n world\r\n', '0\r\n\r\n',
    ], (t) => t.includes('POST /up hello world'));
    expect(up.text).toMatch(/^HTTP\/1\.1 200/);
    const down = await exchange(hp.port, 'GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n', (t) => t.endsWith('0\r\n\r\n'));
    expect(down.text).toMatch(/transfer-encoding: chunked\r\n/i);
    expect(down.text).toContain('6\r\npart1,\r\n5\r\npart2\r\n0\r\n\r\n');
    await hp.stop();
  });

  it('gives an HTTP/1.0 client a length or a close-delimited body, then closes', async () => {
    const hp = await start();
    const fixed = await exchange(hp.port, 'GET /ten HTTP/1.0\r\n\r\n');
    expect(fixed.closed).toBe(true);
    expect(fixed.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(fixed.text).toMatch(/content-length: 9\r\n/i);
    expect(fixed.text).toMatch(/connection: close\r\n/i);
    const open = await exchange(hp.port, 'GET /chunked HTTP/1.0\r\n\r\n');
    expect(open.closed).toBe(true);
    expect(open.text).not.toMatch(/transfer-encoding/i);
    expect(open.text.endsWith('\r\n\r\npart1,part2')).toBe(true);
    await hp.stop();
  });

  it('answers malformed requests with 400 and closes', async () => {
    const hp = await start();
    for (const bad of ['GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n', 'GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n', 'NOT HTTP AT ALL\r\n\r\n']) {
      const r = await exchange(hp.port, bad);
      expect(r.closed).toBe(true);
      expect(r.text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    }
    await hp.stop();
  });

  it('answers nothing pipelined after a request that closes the connection', async () => {
    const hp = await start();
    for (const first of ['GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 'GET /a HTTP/1.0\r\n\r\n',
      'POST /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi']) {
      const { text, closed } = await exchange(hp.port, `${first}GET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n`);
      expect(closed).toBe(true);
      expect(text).toMatch(/^HTTP\/1\.1 200 /);
      expect(count(text, 'HTTP/1.1'), first).toBe(1);
      expect(text).not.toContain('/b');
    }
    await hp.stop();
  });

  it('sends exactly the Content-Length of an answer that runs over it, and the next request gets its own answer', async () => {
    const hp = await start();
    const r = await exchange(hp.port, ['GET /overlong HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /after HTTP/1.1\r\nHost: x\r\n\r\n'],
      (t) => t.endsWith('GET /after '));
    expect(r.closed).toBe(false);
    expect(count(r.text, 'HTTP/1.1 200')).toBe(2);
    expect(r.text).toMatch(/\r\n\r\nhelloHTTP\/1\.1 200 OK\r\n/);
    expect(r.text).not.toContain('bogus');
    await hp.stop();
  });

  it('refuses a request with both Content-Length and Transfer-Encoding and forwards nothing', async () => {
    const hp = await start();
    const seen = async (): Promise<number> => Number(await (await fetch(`${hp.url}/seen`)).text());
    const before = await seen();
    const r = await exchange(hp.port,
      'POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /inner HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(r.closed).toBe(true);
    expect(r.text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(r.text).not.toContain('/smuggle');
    expect(r.text).not.toContain('/inner');
    // Only the two /seen requests reached the backend.
    expect(await seen()).toBe(before + 1);
    await hp.stop();
  });
});
