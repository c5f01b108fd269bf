import crypto from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { fixture, startHotproxy } from './helpers/hotproxy.js';
import { waitFor } from './helpers/wait.js';
import { DEPLOYED, DRAINED, DRAIN_DEADLINE } from '../src/messages.js';

function lineClient(port: number): { send(line: string): Promise<string>; end(): void; socket: net.Socket } {
  const socket = net.connect(port, '127.0.0.1');
  const lines: string[] = [];
  let buf = '';
  socket.on('data', (d) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); }
  });
  return {
    socket,
    async send(line) {
      const n = lines.length;
      socket.write(`${line}\n`);
      await waitFor(() => lines.length > n, `reply to ${line}`);
      return lines[n]!;
    },
    end: () => socket.end(),
  };
}

const MiB = 1024 * 1024;

describe('tcp mode', () => {
  it('passes a line protocol through, new connections go to green, open ones stay on blue', async () => {
    const hp = await startHotproxy(['--mode', 'tcp', '--ready-delay', '200ms', '--drain-timeout', '5s'], ['node', fixture('tcp-echo.js')]);
    const [bluePid] = hp.activePids();
    const a = lineClient(hp.port);
    expect(await a.send('hello')).toBe(`${bluePid}:hello`);
    const outcome = await hp.reload();
    expect(outcome.msg).toBe(DEPLOYED);
    const [greenPid] = outcome.pids as number[];
    expect(await a.send('still here')).toBe(`${bluePid}:still here`);
    const b = lineClient(hp.port);
    expect(await b.send('new')).toBe(`${greenPid}:new`);
    // Blue drains as soon as its last connection closes.
    a.end();
    await hp.waitForLog(DRAINED, (l) => l.gen === 1);
    expect(hp.find(DRAIN_DEADLINE)).toBeUndefined();
    b.end();
    expect(await hp.stop()).toBe(0);
  });
  it('large transfers both ways arrive intact through a reader that lags, and a half-close still gets the answer', async () => {
    const hp = await startHotproxy(['--mode', 'tcp'], ['node', fixture('tcp-bulk.js')]);
    // Far more than the socket buffers on both sides of the proxy, so its writes must wait.
    const down = 32 * MiB;
    const upload = crypto.randomBytes(16 * MiB);
    const s = net.connect(hp.port, '127.0.0.1');
    await once(s, 'connect');
    s.write(`send ${down}\n`);
    // The client reads nothing until its upload is done: the download backs up meanwhile.
    for (let off = 0; off < upload.length; off += 64 * 1024) {
      if (!s.write(upload.subarray(off, off + 64 * 1024))) await once(s, 'drain');
    }
    s.end();
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    await waitFor(() => s.readableEnded, 'the backend to close its side', 30_000);
    const got = Buffer.concat(chunks);
    expect(got.length).toBeGreaterThanOrEqual(down);
    let bad = -1;
    for (let i = 0; i < down && bad < 0; i++) if (got[i] !== i % 251) bad = i;
    expect(bad).toBe(-1);
    const sha = crypto.createHash('sha256').update(upload).digest('hex');
    expect(got.subarray(down).toString()).toBe(`received ${upload.length} ${sha}\n`);
    s.destroy();
    expect(await hp.stop()).toBe(0);
  });

  it('a backend reset and a client gone mid-download each close the other side; the generation drains at once', async () => {
    const hp = await startHotproxy(['--mode', 'tcp', '--ready-delay', '200ms', '--drain-timeout', '60s'], ['node', fixture('tcp-bulk.js')]);
    const reset = net.connect(hp.port, '127.0.0.1').on('error', () => {});
    reset.write('reset\n');
    await waitFor(() => reset.closed, 'the reset to close the client connection');
    const gone = net.connect(hp.port, '127.0.0.1');
    let got = 0;
    gone.on('data', (d: Buffer) => (got += d.length));
    gone.write(`send ${1024 * MiB}\n`);
    await waitFor(() => got > 0, 'the download to start');
    gone.resetAndDestroy();
    expect((await hp.reload()).msg).toBe(DEPLOYED);
    // Both tunnels were released: nothing is left to wait for, long before the deadline.
    await hp.waitForLog(DRAINED, (l) => l.gen === 1, 10_000);
    expect(hp.find(DRAIN_DEADLINE)).toBeUndefined();
    expect(await hp.stop()).toBe(0);
  });
});
