import http from 'node:http';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { startHotproxy } from './helpers/hotproxy.js';
import { waitFor } from './helpers/wait.js';
import { openWebSocket } from './helpers/websocket.js';
import { DRAIN_DEADLINE } from '../src/messages.js';

describe('http mode', () => {
  it('adds X-Forwarded-* and drops hop-by-hop and spoofed forwarding headers', async () => {
    const hp = await startHotproxy([]);
    // Node's http client, because fetch refuses to send a Connection header.
    const body = await new Promise<string>((resolve, reject) => {
      http.get(`${hp.url}/headers`, {
        agent: false,
        headers: { 'x-forwarded-for': '6.6.6.6', 'x-custom': 'kept', 'x-hop': 'dropped', connection: 'x-hop', 'keep-alive': 'timeout=5', te: 'gzip, trailers' },
      }, (res) => { let b = ''; res.on('data', (d) => (b += d)).on('end', () => resolve(b)); }).on('error', reject);
    });
    const { headers } = JSON.parse(body) as { headers: Record<string, string> };
    expect(headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(headers['x-forwarded-proto']).toBe('http');
    expect(headers['x-forwarded-host']).toBe(`127.0.0.1:${hp.port}`);
    expect(headers['x-custom']).toBe('kept');
    expect(headers['x-hop']).toBeUndefined();
    expect(headers['keep-alive']).toBeUndefined();
    // TE is hop-by-hop; only its promise to take trailers goes on, as the proxy relays them.
    expect(headers.te).toBe('trailers');
    await hp.stop();
  });

  it('appends to X-Forwarded-For from a --trust-proxy peer', async () => {
    const hp = await startHotproxy(['--trust-proxy', '127.0.0.0/8']);
    const res = await fetch(`${hp.url}/headers`, { headers: { 'x-forwarded-for': '203.0.113.7' } });
    const { headers } = (await res.json()) as { headers: Record<string, string> };
    expect(headers['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
    await hp.stop();
  });

  it('forwards request bodies, fixed-length and chunked', async () => {
    const hp = await startHotproxy([]);
    const fixed = await fetch(`${hp.url}/echo`, { method: 'POST', body: 'hello body' });
    expect(((await fixed.json()) as { body: string }).body).toBe('hello body');
    const stream = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('chunk1,')); c.enqueue(new TextEncoder().encode('chunk2')); c.close(); } });
    const chunked = await fetch(`${hp.url}/echo`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(((await chunked.json()) as { body: string }).body).toBe('chunk1,chunk2');
    await hp.stop();
  });

  for (const engine of ['raw', 'node']) {
    it(`a client that half-closes after its request still gets the whole answer (${engine} engine)`, async () => {
      const hp = await startHotproxy(['--engine', engine]);
      const answer = await new Promise<string>((resolve, reject) => {
        const s = net.connect(hp.port, '127.0.0.1');
        let got = '';
        s.on('data', (d) => (got += d)).on('close', () => resolve(got)).on('error', reject);
        s.write('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n');
        s.end('hello');
      });
      expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
      expect(answer).toContain('"body":"hello"');
      expect(await hp.stop()).toBe(0);
    });
  }

  it('streams server-sent events without buffering', async () => {
    const hp = await startHotproxy([]);
    const res = await fetch(`${hp.url}/sse`);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    const first = await reader.read();
    // The first event arrives while the backend is still producing the rest.
    expect(new TextDecoder().decode(first.value)).toBe('data: 0\n\n');
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    expect(rest).toBe('data: 1\n\ndata: 2\n\n');
    await hp.stop();
  });

  it('passes WebSockets through, and a swap leaves an open one on its generation', async () => {
    const hp = await startHotproxy(['--drain-timeout', '2s']);
    const [bluePid] = hp.activePids();
    const { ws, messages } = await openWebSocket(hp.port);
    ws.send('one');
    await waitFor(() => messages.length === 1, 'echo');
    expect(messages[0]).toBe(`${bluePid}:one`);
    await hp.reload();
    ws.send('two');
    await waitFor(() => messages.length === 2, 'echo after swap');
    expect(messages[1]).toBe(`${bluePid}:two`);
    // At the drain deadline the connection is cut, and the old generation stops.
    const closed = new Promise((resolve) => ws.once('close', resolve));
    await hp.waitForLog(DRAIN_DEADLINE, (l) => l.gen === 1);
    await closed;
    await hp.stop();
  });

  it('answers 502 when the backend breaks a response and keeps serving', async () => {
    const hp = await startHotproxy([]);
    const [pid] = hp.activePids();
    // Kill the backend in the middle of a slow request: that one request fails with 502.
    const slow = fetch(`${hp.url}/slow?ms=5000`, { method: 'POST', body: 'x' });
    await hp.waitForLog('slow request started');
    process.kill(pid!, 'SIGKILL');
    expect((await slow).status).toBe(502);
    const after = await fetch(hp.url);
    expect(after.status).toBe(200);
    await hp.stop();
  });

  it('serves many keep-alive requests on one client connection across swaps', async () => {
    const hp = await startHotproxy([]);
    const sock = net.connect(hp.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    let buf = '';
    sock.on('data', (d) => (buf += d));
    const ask = async (n: number): Promise<void> => {
      sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitFor(() => buf.split('HTTP/1.1 200').length - 1 >= n, `response ${n}`);
    };
    await ask(1);
    await hp.reload();
    await ask(2);
    await hp.reload();
    await ask(3);
    expect(sock.destroyed).toBe(false);
    const gens = [...buf.matchAll(/"gen":(\d+)/g)].map((m) => Number(m[1]));
    expect(gens).toEqual([1, 2, 3]);
    sock.destroy();
    await hp.stop();
  });
});
