// TLS at the edge, end to end: SNI picks the certificate, ALPN offers h2 and http/1.1, only
// TLS 1.2 and 1.3 are spoken, the backend hears X-Forwarded-Proto https, plain HTTP can be
// redirected (ACME challenges excepted), the h2 limits hold, WebSockets work over TLS, and
// options that cannot work are refused with one line.
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { NODE_APP, runCli, startHotproxy, type Hotproxy } from './helpers/hotproxy.js';
import { handshake, makeCert, tempDir, type MadeCert } from './helpers/tls.js';
import { waitFor } from './helpers/wait.js';
import { H2_FLOOD } from '../src/messages.js';

const run = promisify(execFile);
let dirs: string[] = [];
afterEach(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); dirs = []; });

function certs(...sets: [string, string[]][]): MadeCert[] {
  const dir = tempDir();
  dirs.push(dir);
  return sets.map(([base, names]) => makeCert(dir, base, names));
}

const tlsArgs = (pairs: MadeCert[]): string[] => ['--listen-tls', '127.0.0.1:0', ...pairs.flatMap((p) => ['--tls-cert', p.cert, '--tls-key', p.key])];

/** GET over HTTPS/1.1: status, headers, body. */
function get(hp: Hotproxy, path: string, ca: string[]): Promise<{ status: number; body: string; alpn: string | false }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port: hp.tlsPort, path, ca, agent: false, ALPNProtocols: ['http/1.1'] }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c)).on('end', () => resolve({ status: res.statusCode!, body, alpn: (res.socket as tls.TLSSocket).alpnProtocol }));
    });
    req.on('error', reject);
  });
}

/** GET over h2 on a new session: status, body, the ALPN protocol. */
function h2get(hp: Hotproxy, path: string, ca: string[]): Promise<{ status: number; body: string; alpn: string | undefined }> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(hp.tlsUrl, { ca });
    s.on('error', reject);
    const st = s.request({ ':path': path });
    let status = 0;
    let body = '';
    st.on('response', (h) => { status = Number(h[':status']); });
    st.on('data', (c) => (body += c)).on('end', () => { resolve({ status, body, alpn: s.alpnProtocol }); s.close(); });
    st.on('error', reject);
  });
}

describe('TLS at the edge', () => {
  it('SNI picks the pair whose names match, exact or one-label wildcard; no SNI gets the first pair', async () => {
    const [first, wild] = certs(['first', ['a.test']], ['wild', ['*.wild.test', 'exact.test']]);
    const hp = await startHotproxy(tlsArgs([first!, wild!]));
    expect((await handshake(hp.tlsPort, 'a.test')).serial).toBe(first!.serial);
    expect((await handshake(hp.tlsPort, 'exact.test')).serial).toBe(wild!.serial);
    expect((await handshake(hp.tlsPort, 'x.wild.test')).serial).toBe(wild!.serial);
    // One label deep only, and unknown names: the first pair.
    expect((await handshake(hp.tlsPort, 'a.b.wild.test')).serial).toBe(first!.serial);
    expect((await handshake(hp.tlsPort, 'unknown.test')).serial).toBe(first!.serial);
    // No SNI at all (servername '' sends none).
    const noSni = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: hp.tlsPort, rejectUnauthorized: false }, () => { resolve(s.getPeerCertificate().serialNumber.toUpperCase()); s.end(); });
      s.once('error', reject);
    });
    expect(noSni).toBe(first!.serial);
    expect(await hp.stop()).toBe(0);
  });

  it('ALPN offers h2 and http/1.1: curl and Node clients get what they ask for', async () => {
    const [pair] = certs(['edge', ['edge.test']]);
    const hp = await startHotproxy(tlsArgs([pair!]));
    expect((await handshake(hp.tlsPort, 'edge.test', { alpn: ['h2', 'http/1.1'] })).alpn).toBe('h2');
    expect((await handshake(hp.tlsPort, 'edge.test', { alpn: ['http/1.1'] })).alpn).toBe('http/1.1');
    const curl = async (flag: string): Promise<string> => (await run('curl', ['-sk', flag, '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `${hp.tlsUrl}/`])).stdout;
    expect(await curl('--http2')).toBe('2 200');
    expect(await curl('--http1.1')).toBe('1.1 200');
    expect((await h2get(hp, '/', [pair!.pem])).alpn).toBe('h2');
    expect((await get(hp, '/', [pair!.pem])).alpn).toBe('http/1.1');
    expect(await hp.stop()).toBe(0);
  });

  it('TLS 1.0 and 1.1 are refused, 1.2 and 1.3 accepted', async () => {
    const [pair] = certs(['edge', ['edge.test']]);
    const hp = await startHotproxy(tlsArgs([pair!]));
    const speak = (v: tls.SecureVersion): Promise<string> => new Promise((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: hp.tlsPort, servername: 'edge.test', rejectUnauthorized: false, minVersion: v, maxVersion: v,
        // OpenSSL 3 refuses TLS < 1.2 at its default security level on the client side too.
        ciphers: 'DEFAULT:@SECLEVEL=0' }, () => { resolve(s.getProtocol() ?? 'none'); s.end(); });
      s.once('error', (e: NodeJS.ErrnoException) => resolve(`refused ${e.code}`));
    });
    expect(await speak('TLSv1')).toMatch(/^refused /);
    expect(await speak('TLSv1.1')).toMatch(/^refused /);
    expect(await speak('TLSv1.2')).toBe('TLSv1.2');
    expect(await speak('TLSv1.3')).toBe('TLSv1.3');
    expect(await hp.stop()).toBe(0);
  });

  it('X-Forwarded-Proto is https over TLS (h1 and h2) and http on the plain listener', async () => {
    const [pair] = certs(['edge', ['edge.test']]);
    const hp = await startHotproxy(tlsArgs([pair!]));
    const proto = (body: string): unknown => (JSON.parse(body) as { headers: Record<string, string> }).headers['x-forwarded-proto'];
    expect(proto((await get(hp, '/headers', [pair!.pem])).body)).toBe('https');
    expect(proto((await h2get(hp, '/headers', [pair!.pem])).body)).toBe('https');
    expect(proto(await (await fetch(`${hp.url}/headers`)).text())).toBe('http');
    expect(await hp.stop()).toBe(0);
  });

  it('--redirect-https answers plain requests with 308 to https://host:tlsport/path, but not ACME challenges', async () => {
    const [pair] = certs(['edge', ['edge.test']]);
    const hp = await startHotproxy([...tlsArgs([pair!]), '--redirect-https']);
    const r = await fetch(`${hp.url}/some/path?q=1`, { redirect: 'manual', method: 'POST', body: 'x' });
    expect(r.status).toBe(308);
    expect(r.headers.get('location')).toBe(`https://127.0.0.1:${hp.tlsPort}/some/path?q=1`);
    const c = await fetch(`${hp.url}/.well-known/acme-challenge/x`, { redirect: 'manual' });
    expect(c.status).not.toBe(308);
    expect(c.headers.get('location')).toBeNull();
    // Over TLS nothing is redirected.
    expect((await get(hp, '/', [pair!.pem])).status).toBe(200);
    expect(await hp.stop()).toBe(0);
  });

  it('h2: SETTINGS_MAX_CONCURRENT_STREAMS is 128 and 300 streams at once are queued by the client, none failed', async () => {
    const [pair] = certs(['edge', ['edge.test']]);
    const hp = await startHotproxy(tlsArgs([pair!]));
    const s = http2.connect(hp.tlsUrl, { ca: [pair!.pem] });
    const settings = await new Promise<http2.Settings>((resolve) => s.once('remoteSettings', resolve));
    expect(settings.maxConcurrentStreams).toBe(128);
    const one = (): Promise<number> => new Promise((resolve) => {
      const st = s.request({ ':path': '/slow?ms=200' });
      let status = 0;
      st.on('response', (h) => { status = Number(h[':status']); });
      st.on('data', () => {}).on('end', () => resolve(status)).on('error', () => resolve(-1));
    });
    const statuses = await Promise.all(Array.from({ length: 300 }, one));
    expect(statuses.filter((x) => x !== 200)).toEqual([]);
    s.close();
    expect(await hp.stop()).toBe(0);
  });

  it('h2 streams the client resets while their answers are still flowing leave nothing in flight, and SIGTERM exits at once', async () => {
    const [pair] = certs(['edge', ['edge.test']]);
    const hp = await startHotproxy(tlsArgs([pair!]));
    const s = http2.connect(hp.tlsUrl, { ca: [pair!.pem] });
    // Each stream is reset once its answer is flowing: the backend is still sending (16 MB),
    // the proxy waits for the client to take more.
    const cancelled = (): Promise<unknown> => new Promise((resolve) => {
      const st = s.request({ ':path': '/bytes?n=16000000' }).on('error', () => {}).on('close', resolve);
      st.once('data', () => { st.pause(); st.close(http2.constants.NGHTTP2_CANCEL); });
    });
    await Promise.all(Array.from({ length: 5 }, cancelled));
    // And uploads answered before they were sent whole, the client closing the stream after
    // the answer as it may: the rest of each upload is not waited for.
    const early = (): Promise<unknown> => new Promise((resolve) => {
      const st = s.request({ ':path': '/status?code=200', ':method': 'POST' }).on('error', () => {}).on('close', resolve);
      st.write(Buffer.alloc(4_000_000, 'u'));
      st.on('data', () => {}).on('end', () => st.close(http2.constants.NGHTTP2_NO_ERROR));
    });
    await Promise.all(Array.from({ length: 5 }, early));
    // Each cancelled exchange lets go of its upstream request: the generation has nothing in flight.
    const inflight = async (): Promise<number | undefined> => ((await hp.status())?.generations as { inflight: number }[] | undefined)?.reduce((n, g) => n + g.inflight, 0);
    await waitFor(async () => (await inflight()) === 0 || undefined, 'nothing in flight after the resets', 10_000);
    s.close();
    const t0 = Date.now();
    expect(await hp.stop()).toBe(0);
    // The drain deadline (30 s) is not what ended it: nothing was left to wait for.
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('rapid reset: 1000 streams opened and cancelled close the session with ENHANCE_YOUR_CALM and log H2_FLOOD; another client is served', async () => {
    const [pair] = certs(['edge', ['edge.test']]);
    const hp = await startHotproxy(tlsArgs([pair!]));
    // Written as frames, as an attacker does: a client library may drop a stream cancelled
    // before its HEADERS left, and then nothing would be reset on the wire.
    const socket = tls.connect({ host: '127.0.0.1', port: hp.tlsPort, servername: 'edge.test', ca: [pair!.pem], ALPNProtocols: ['h2'] });
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    expect(socket.alpnProtocol).toBe('h2');
    let inbound = Buffer.alloc(0);
    const goaways: number[] = [];
    socket.on('data', (d: Buffer) => {
      inbound = Buffer.concat([inbound, d]);
      while (inbound.length >= 9) {
        const len = inbound.readUIntBE(0, 3);
        if (inbound.length < 9 + len) break;
        if (inbound[3] === 0x7) goaways.push(inbound.readUInt32BE(9 + 4));
        inbound = inbound.subarray(9 + len);
      }
    });
    const frame = (type: number, flags: number, id: number, payload: Buffer): Buffer => {
      const h = Buffer.alloc(9);
      h.writeUIntBE(payload.length, 0, 3);
      h[3] = type;
      h[4] = flags;
      h.writeUInt32BE(id, 5);
      return Buffer.concat([h, payload]);
    };
    // HPACK: :method GET, :scheme https, :path /, :authority edge.test (literal, indexed name).
    const head = Buffer.concat([Buffer.from([0x82, 0x87, 0x84, 0x41, 9]), Buffer.from('edge.test')]);
    const cancel = Buffer.alloc(4);
    cancel.writeUInt32BE(http2.constants.NGHTTP2_CANCEL);
    const out = [Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(0x4, 0, 0, Buffer.alloc(0))];
    for (let i = 0; i < 1000; i++) {
      const id = 2 * i + 1;
      out.push(frame(0x1, 0x5, id, head), frame(0x3, 0, id, cancel));
    }
    socket.write(Buffer.concat(out));
    await waitFor(() => goaways.length > 0, 'a GOAWAY', 20_000);
    expect(goaways).toEqual([http2.constants.NGHTTP2_ENHANCE_YOUR_CALM]);
    await hp.waitForLog(H2_FLOOD);
    const other = await h2get(hp, '/', [pair!.pem]);
    expect(other.status).toBe(200);
    socket.destroy();
    expect(await hp.stop()).toBe(0);
  });

  it('a WebSocket over TLS (HTTP/1.1) is tunnelled to the backend', async () => {
    const [pair] = certs(['edge', ['edge.test']]);
    const hp = await startHotproxy(tlsArgs([pair!]));
    const ws = new WebSocket(`wss://127.0.0.1:${hp.tlsPort}/`, { ca: [pair!.pem] });
    const messages: string[] = [];
    ws.on('message', (m) => messages.push(m.toString()));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send('hello');
    await waitFor(() => messages.length === 1, 'the echo');
    expect(messages[0]).toMatch(/^\d+:hello$/);
    ws.close();
    await new Promise((resolve) => ws.once('close', resolve));
    expect(await hp.stop()).toBe(0);
  });
});

describe('TLS options that cannot work', () => {
  const oneLine = (stderr: string, pattern: RegExp): void => {
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^hotproxy: /);
    expect(lines[0]).toMatch(pattern);
  };

  it('--listen-tls without a certificate, --tls-cert without --tls-key, and tcp mode with --listen-tls: one line, exit 2', async () => {
    const [pair] = certs(['edge', ['edge.test']]);
    for (const [args, pattern] of [
      [['--listen-tls', '127.0.0.1:0'], /--listen-tls needs a certificate/],
      [['--listen-tls', '127.0.0.1:0', '--tls-cert', pair!.cert], /--tls-cert and --tls-key come in pairs/],
      [['--mode', 'tcp', '--listen', '127.0.0.1:0', ...tlsArgs([pair!])], /--listen-tls is for http mode/],
    ] as const) {
      const r = await runCli([...args, '--', ...NODE_APP], {}, 20_000);
      expect(r.status).toBe(2);
      oneLine(r.stderr, pattern);
    }
  });
});
