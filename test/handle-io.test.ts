// Reading a connection at the handle level (internals/handle-io.ts) over real loopback
// sockets: readDirect hands every read over as it arrives, in one buffer all such connections
// share, stops and starts reading when told, and gives the connection back to its stream
// (data, end) on release; writeNow writes past the stream, in order with it, and says when a
// write has to wait for the peer.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PENDING, WROTE, canReadDirect, readDirect, writeNow } from '../src/internals/handle-io.js';
import { waitFor } from './helpers/wait.js';

/** Both ends of a loopback TCP connection: [the reading side, the writing side]. */
function connection(): Promise<[net.Socket, net.Socket]> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer((accepted) => { srv.close(); resolve([accepted, dialled]); });
    let dialled: net.Socket;
    srv.on('error', reject).listen(0, '127.0.0.1', () => { dialled = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1'); });
  });
}

const open: net.Socket[] = [];
afterEach(() => { for (const s of open.splice(0)) s.destroy(); });

describe('readDirect', () => {
  it('hands each connection its own bytes in order, though they all read into one buffer', async () => {
    const pairs = await Promise.all([connection(), connection(), connection()]);
    open.push(...pairs.flat());
    const sent = pairs.map(() => randomBytes(3 << 20));
    const got = pairs.map(() => [] as Buffer[]);
    pairs.forEach(([reader], i) => {
      expect(canReadDirect(reader)).toBe(true);
      reader.on('data', () => { throw new Error('the stream read a directly read connection'); });
      readDirect(reader, (chunk) => got[i]!.push(Buffer.from(chunk)));
    });
    pairs.forEach(([, writer], i) => writer.write(sent[i]!));
    const length = (i: number): number => got[i]!.reduce((n, b) => n + b.length, 0);
    await waitFor(() => sent.every((s, i) => length(i) >= s.length) || undefined, 'every connection to read all it was sent');
    sent.forEach((s, i) => expect(Buffer.concat(got[i]!).equals(s), `connection ${i} got its bytes as sent`).toBe(true));
  });

  it('reads nothing while paused, all of it once resumed, and gives the connection back to its stream', async () => {
    const [reader, writer] = await connection();
    open.push(reader, writer);
    let direct = 0;
    const reads = readDirect(reader, (chunk) => { direct += chunk.length; });
    reads.pause();
    writer.write(randomBytes(1000));
    // A round trip the other way: had the reader been reading, the 1,000 bytes were read by now.
    await new Promise<void>((resolve) => { writer.once('data', () => resolve()); reader.write('x'); });
    await new Promise((r) => setImmediate(r));
    expect(direct).toBe(0);
    reads.resume();
    await waitFor(() => direct === 1000 || undefined, 'the bytes held in the kernel to be read on resume');
    reads.release();
    const streamed: Buffer[] = [];
    let ended = false;
    reader.on('data', (d: Buffer) => streamed.push(d));
    reader.on('end', () => { ended = true; });
    const after = randomBytes(200_000);
    writer.end(after);
    await waitFor(() => ended || undefined, "the stream's end");
    expect(Buffer.concat(streamed).equals(after), 'the stream got the bytes after the release').toBe(true);
    expect(direct).toBe(1000);
  });
});

describe('writeNow', () => {
  it('writes past the stream in order with its writes, and a write the peer is slow to take completes later', async () => {
    const [reader, writer] = await connection();
    open.push(reader, writer);
    if (writer.connecting) await new Promise((r) => writer.once('connect', r));
    reader.pause();
    // Latin1 text carries any bytes; a big one cannot all go into the kernel while nobody reads.
    const small = randomBytes(100).toString('latin1');
    expect(writeNow(writer, small, () => {})).toBe(WROTE);
    const big = randomBytes(16 << 20);
    let done = -1;
    expect(writeNow(writer, big, (status) => { done = status; })).toBe(PENDING);
    // The stream's own write goes after the pending one: libuv keeps one queue per handle.
    const tail = randomBytes(5000);
    writer.write(tail);
    const got: Buffer[] = [];
    let n = 0;
    reader.on('data', (d: Buffer) => { got.push(d); n += d.length; });
    reader.resume();
    const total = 100 + big.length + tail.length;
    await waitFor(() => n >= total || undefined, 'every byte written to arrive');
    expect(Buffer.concat(got).equals(Buffer.concat([Buffer.from(small, 'latin1'), big, tail])), 'the bytes arrived in the order written').toBe(true);
    await waitFor(() => done >= 0 || undefined, "the pending write's completion");
    expect(done).toBe(0);
  });
});
