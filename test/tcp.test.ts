import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { fixture, startHotproxy } from './helpers/hotproxy.js';
import { waitFor } from './helpers/wait.js';

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

describe('tcp mode', () => {
  it('passes a line protocol through, new connections go to green, open ones stay on blue', async () => {
    const hp = await startHotproxy(['--mode', 'tcp', '--ready-delay', '200ms', '--drain-timeout', '5s'], ['node', fixture('tcp-echo.js')]);
    const [bluePid] = hp.activePids();
    const a = lineClient(hp.port);
    expect(await a.send('hello')).toBe(`${bluePid}:hello`);
    const outcome = await hp.reload();
    const [greenPid] = outcome.pids as number[];
    expect(await a.send('still here')).toBe(`${bluePid}:still here`);
    const b = lineClient(hp.port);
    expect(await b.send('new')).toBe(`${greenPid}:new`);
    // Blue drains as soon as its last connection closes.
    a.end();
    await hp.waitForLog('Drained', (l) => l.gen === 1);
    b.end();
    expect(await hp.stop()).toBe(0);
  });
});
