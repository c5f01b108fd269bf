// A backend whose accept queue is full refuses a connect over a unix socket at once (EAGAIN),
// where TCP would have waited: hotproxy connects again to the same instance a moment later,
// so a burst of connections waits for the backend instead of failing — uploads included.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { fixture, startHotproxy } from './helpers/hotproxy.js';

const BACKEND = ['node', fixture('slow-accept.js')];

/** One request on its own connection: the status line and body of the answer, or the error. */
function post(port: number, body: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => (got += d.toString('latin1'))).on('error', (e) => resolve(`error ${e.message}`));
    s.on('close', () => resolve(got));
    // Not half-closed: the answer's Connection: close ends it.
    s.write(`POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
    s.write(body);
  });
}

function echo(port: number, line: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => (got += d)).on('error', (e) => resolve(`error ${e.message}`)).on('close', () => resolve(got));
    s.end(line);
  });
}

describe("a backend's full accept queue", () => {
  for (const engine of ['raw', 'node']) {
    it(`http mode (${engine} engine): 60 uploads on 60 new connections at once all reach the backend whole`, async () => {
      const hp = await startHotproxy(['--engine', engine], BACKEND);
      const body = Buffer.alloc(100_000, 'b');
      const answers = await Promise.all(Array.from({ length: 60 }, () => post(hp.port, body)));
      const bad = answers.filter((a) => !(a.startsWith('HTTP/1.1 200') && a.endsWith('\r\n100000\n')));
      expect(bad.map((a) => a.split('\r\n')[0])).toEqual([]);
      expect(hp.logs.filter((l) => (l.level ?? 0) >= 40).map((l) => l.msg)).toEqual([]);
      expect(await hp.stop()).toBe(0);
    });
  }

  it('tcp mode: 60 connections at once are all joined to the backend', async () => {
    const hp = await startHotproxy(['--mode', 'tcp'], BACKEND, { env: { APP_MODE: 'tcp' } });
    const lines = Array.from({ length: 60 }, (_, i) => `line ${i}\n`);
    const got = await Promise.all(lines.map((l) => echo(hp.port, l)));
    expect(got).toEqual(lines);
    expect(hp.logs.filter((l) => (l.level ?? 0) >= 40).map((l) => l.msg)).toEqual([]);
    expect(await hp.stop()).toBe(0);
  });
});
