// The raw engine's body pump over real loopback sockets: a body's bytes reach the client
// exactly as the backend framed them, whichever read boundary falls where, and the end of the
// body (a count, or the last chunk and its trailers) is found and reported once.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BodyPump } from '../src/proxy/raw/body-pump.js';
import { waitFor } from './helpers/wait.js';

/** Both ends of a loopback TCP connection. */
function connection(): Promise<[net.Socket, net.Socket]> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer((accepted) => { srv.close(); resolve([accepted, dialled]); });
    let dialled: net.Socket;
    srv.on('error', reject).listen(0, '127.0.0.1', () => { dialled = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1'); });
  });
}

interface Outcome { pumped?: { bytes: number; trailers: string[] | null; extra: boolean }; failed?: string; client: string }

const open: net.Socket[] = [];
afterEach(() => { for (const s of open.splice(0)) s.destroy(); });

/**
 * The backend's answer body is `first` (what came in the read that held the head) and then
 * `rest` (written by the backend afterwards); resolves once the pump reported, with what the
 * client received by then (the owner writes "[END]" when told the body ended).
 */
async function pump(length: number, first: string, rest: string[], before = ''): Promise<Outcome> {
  const [backend, upstream] = await connection();
  const [proxySide, client] = await connection();
  open.push(backend, upstream, proxySide, client);
  const out: Outcome = { client: '' };
  client.on('data', (d: Buffer) => (out.client += d.toString('latin1')));
  // What the client's stream still holds when the pump starts (the tail of an answer before).
  if (before !== '') { client.pause(); proxySide.write(before, 'latin1'); setImmediate(() => client.resume()); }
  upstream.on('data', () => { throw new Error('the stream read while the pump had the socket'); });
  const p = new BodyPump({
    heard: () => {},
    pumped: (bytes, trailers, extra) => { out.pumped = { bytes, trailers, extra }; proxySide.write('[END]'); },
    pumpFailed: (err) => { out.failed = err.message; },
  }, upstream, proxySide, length);
  p.start(Buffer.from(first, 'latin1'), proxySide);
  for (const r of rest) backend.write(Buffer.from(r, 'latin1'));
  await waitFor(() => (out.failed !== undefined || (out.pumped !== undefined && out.client.endsWith('[END]'))) || undefined, 'the pump to report');
  return out;
}

describe('Content-Length bodies', () => {
  it('a body split over reads reaches the client byte for byte, and its end is reported', async () => {
    const body = 'x'.repeat(70_000);
    const o = await pump(body.length, body.slice(0, 1000), [body.slice(1000, 40_000), body.slice(40_000)]);
    expect(o.pumped).toEqual({ bytes: body.length, trailers: null, extra: false });
    expect(o.client).toBe(`${body}[END]`);
  });

  it('waits for what the client stream still holds, and follows it in order', async () => {
    const earlier = 'e'.repeat(8 << 20);
    const o = await pump(5, 'abcde', [], earlier);
    expect(o.client.length).toBe(earlier.length + 10);
    expect(o.client === `${earlier}abcde[END]`, 'the earlier bytes, then the body').toBe(true);
  });

  it('bytes after the body are not passed on and spoil the connection', async () => {
    const o = await pump(10, '0123456789HTTP/1.1 200 OK\r\n', []);
    expect(o.pumped).toEqual({ bytes: 10, trailers: null, extra: true });
    expect(o.client).toBe('0123456789[END]');
  });
});

describe('the connection after a pump', () => {
  it('reads reach its stream again byte for byte, pump after pump, though the pump read into one reused buffer', async () => {
    const [backend, upstream] = await connection();
    const [proxySide, client] = await connection();
    open.push(backend, upstream, proxySide, client);
    const received: Buffer[] = [];
    client.on('data', (d: Buffer) => received.push(d));
    let streamed: Buffer[] = [];
    const onStream = (d: Buffer): void => { streamed.push(d); };
    const pumpOnce = async (body: Buffer): Promise<void> => {
      upstream.off('data', onStream);
      let done = false;
      // A slow client for the first half: the pump's writes go asynchronous and its reads wait.
      client.pause();
      const p = new BodyPump({ heard: () => {}, pumped: () => { done = true; }, pumpFailed: (err) => { throw err; } }, upstream, proxySide, body.length);
      p.start(Buffer.alloc(0), proxySide);
      backend.write(body);
      await waitFor(() => received.length > 0 || client.readableLength > 0 || undefined, 'the first pumped bytes');
      client.resume();
      await waitFor(() => done || undefined, 'the pump to report');
      upstream.on('data', onStream);
    };
    const streamOnce = async (data: Buffer): Promise<void> => {
      streamed = [];
      backend.write(data);
      await waitFor(() => Buffer.concat(streamed).length >= data.length || undefined, 'the stream to read it all');
      expect(Buffer.concat(streamed).equals(data), 'the stream got the bytes as written').toBe(true);
    };
    const bodies = [randomBytes(3 << 20), randomBytes(2 << 20)];
    await pumpOnce(bodies[0]!);
    await streamOnce(randomBytes(300_000));
    await pumpOnce(bodies[1]!);
    await streamOnce(randomBytes(500_000));
    await waitFor(() => Buffer.concat(received).length >= bodies[0]!.length + bodies[1]!.length || undefined, 'the client to have both bodies');
    expect(Buffer.concat(received).equals(Buffer.concat(bodies)), 'the client got both bodies as written').toBe(true);
  });
});

describe('chunked bodies', () => {
  it('chunks pass through verbatim, extensions too, and the last chunk and trailers are handed over parsed', async () => {
    const o = await pump(-1, '5\r\nhello\r\n3;name=va', ['lue\r\nabc\r\n', '0\r\nX-A: 1\r\nx-b:  two \r\n\r\n']);
    expect(o.pumped).toEqual({ bytes: 8, trailers: ['X-A', '1', 'x-b', 'two'], extra: false });
    expect(o.client).toBe('5\r\nhello\r\n3;name=value\r\nabc\r\n[END]');
  });

  it('a size line cut by a read boundary goes out whole, once', async () => {
    const o = await pump(-1, 'a\r\n0123456789\r\n1', ['0\r\n', `${'y'.repeat(16)}\r\n0\r\n\r\n`]);
    expect(o.client).toBe(`a\r\n0123456789\r\n10\r\n${'y'.repeat(16)}\r\n[END]`);
    expect(o.pumped).toEqual({ bytes: 26, trailers: null, extra: false });
  });

  it('a last-chunk line cut by a read boundary is not passed on', async () => {
    const o = await pump(-1, '2\r\nok\r\n0', ['\r\n', '\r\n']);
    expect(o.client).toBe('2\r\nok\r\n[END]');
    expect(o.pumped).toEqual({ bytes: 2, trailers: null, extra: false });
  });

  it('an empty chunked body is only its last chunk', async () => {
    const o = await pump(-1, '0\r\n\r\n', []);
    expect(o.client).toBe('[END]');
    expect(o.pumped).toEqual({ bytes: 0, trailers: null, extra: false });
  });

  it('random chunk sizes cut at random points arrive verbatim (seeded)', async () => {
    let seed = 20261203;
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
    for (let round = 0; round < 6; round++) {
      let wire = '';
      let data = 0;
      for (let c = rnd(40); c >= 0; c--) {
        const size = 1 + rnd(rnd(3) === 0 ? 70_000 : 300);
        data += size;
        wire += `${size.toString(16)}${rnd(4) === 0 ? ';e=1' : ''}\r\n${String.fromCharCode(97 + rnd(26)).repeat(size)}\r\n`;
      }
      const end = `0\r\n${rnd(2) ? 'T: v\r\n' : ''}\r\n`;
      const all = wire + end;
      const cuts = [...new Set(Array.from({ length: 8 }, () => rnd(all.length)))].sort((a, b) => a - b);
      const pieces = [0, ...cuts].map((from, i) => all.slice(from, [...cuts, all.length][i]));
      const o = await pump(-1, pieces[0]!, pieces.slice(1));
      expect(o.failed).toBeUndefined();
      expect(o.client.length).toBe(wire.length + 5);
      expect(o.client === `${wire}[END]`, `round ${round}: the client got other bytes than the backend sent`).toBe(true);
      expect(o.pumped?.bytes).toBe(data);
    }
  });

  for (const [what, bad] of [['a chunk size that is not hex', 'zz\r\n'], ['chunk data without its CRLF', '2\r\nokX'], ['a trailer without a colon', '0\r\nnocolon\r\n\r\n']]) {
    it(`${what} fails the answer (502 or a cut), with a reason`, async () => {
      const o = await pump(-1, bad!, []);
      expect(o.failed).toMatch(/^the backend's answer is malformed: /);
      expect(o.pumped).toBeUndefined();
    });
  }
});
