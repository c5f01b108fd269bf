// ACME against pebble, for real: pebble-challtestsrv resolves the test names to 127.0.0.1 and
// pebble's validator fetches each HTTP-01 token from the port under test. First the module on
// its own, with a tiny in-test server answering the tokens it hands out; then hotproxy whole,
// whose plain listener answers them.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Acme, type AcmeOptions } from '../src/acme/acme.js';
import { MAX_TIMER_MS, nextRenewal, renewAt, runAt } from '../src/acme/schedule.js';
import type { AcmeTokens, CertPair } from '../src/ipc.js';
import { ACME_CACHED, ACME_FAILED, ACME_OBTAINED, ACME_ORDERING } from '../src/messages.js';
import { freePort } from './helpers/host.js';
import { startHotproxy } from './helpers/hotproxy.js';
import { pebbleInstalled, startPebble, stopPebbles } from './helpers/pebble.js';
import { tempDir } from './helpers/tls.js';
import { waitFor } from './helpers/wait.js';

const NO_PEBBLE = 'pebble and pebble-challtestsrv are not installed (Debian package pebble): ACME tests skipped';
if (!pebbleInstalled) console.warn(NO_PEBBLE);

afterEach(stopPebbles);

const opened: Acme[] = [];
afterEach(async () => { await Promise.all(opened.splice(0).map((a) => a.stop())); });

interface LogLine { msg: string; [k: string]: unknown }

/** An Acme with its log lines, certificates and token sets recorded. */
async function openAcme(o: Partial<AcmeOptions> & Pick<AcmeOptions, 'domains' | 'directory'>) {
  const logs: LogLine[] = [];
  const certs: CertPair[] = [];
  const tokenSets: AcmeTokens[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => { logs.push(JSON.parse(s) as LogLine); } });
  const acme = await Acme.open({
    log, onCert: (_name, pair) => certs.push(pair), onTokens: (t) => { tokenSets.push(t); }, retryMinMs: 200, retryMaxMs: 1_000, ...o,
  });
  opened.push(acme);
  return { acme, logs, certs, tokenSets, tokens: () => tokenSets.at(-1) ?? {} };
}

/** Answers GET /.well-known/acme-challenge/<token> from `tokens()`, as hotproxy's plain listener does; counts what it served. */
async function challengeServer(tokens: () => AcmeTokens): Promise<{ port: number; served: string[]; close(): void }> {
  const served: string[] = [];
  const server = http.createServer((req, res) => {
    const token = req.url?.startsWith('/.well-known/acme-challenge/') ? req.url.slice(28) : undefined;
    const keyAuth = token === undefined ? undefined : tokens()[token];
    if (keyAuth === undefined) { res.writeHead(404).end(); return; }
    served.push(token!);
    res.writeHead(200, { 'content-type': 'text/plain' }).end(keyAuth);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const close = (): void => { server.closeAllConnections(); server.close(); };
  closers.push(close);
  return { port: (server.address() as { port: number }).port, served, close };
}
const closers: (() => void)[] = [];
afterEach(() => { closers.splice(0).forEach((c) => c()); });

/** The leaf verifies against pebble's root through the chain it came with, and names `name`. */
function verifies(pem: string, root: string, name: string): boolean {
  const chain = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)!.map((c) => new X509Certificate(c));
  const ca = new X509Certificate(root);
  const signedInTurn = chain.every((c, i) => c.verify((chain[i + 1] ?? ca).publicKey));
  return signedInTurn && chain.at(-1)!.checkIssued(ca) && chain[0]!.checkHost(name) === name;
}

/** Waits for the `n`th certificate; on a timeout, says what the module logged. */
async function certs(a: Awaited<ReturnType<typeof openAcme>>, n: number, what: string): Promise<CertPair> {
  await waitFor(() => a.certs.length >= n, what, 30_000).catch((err: Error) => {
    throw new Error(`${err.message}; logged: ${JSON.stringify(a.logs.map(({ msg, err: e }) => (e ? { msg, err: e } : msg)))}`);
  });
  return a.certs[n - 1]!;
}

const mode = (p: string): number => statSync(p).mode & 0o777;

describe('ACME module against pebble', () => {
  it.skipIf(!pebbleInstalled)('obtains a certificate naming all the domains, validated by HTTP-01, and caches it privately', async () => {
    let tokens: () => AcmeTokens = () => ({});
    const web = await challengeServer(() => tokens());
    const pebble = await startPebble({ httpPort: web.port });
    const cacheDir = join(tempDir('hotproxy-acme-'), 'nested', 'acme');
    const a = await openAcme({ domains: ['acme.test', 'www.acme.test'], directory: pebble.directory, caFile: pebble.caFile, cacheDir });
    tokens = a.tokens;
    expect(a.certs).toEqual([]);
    a.acme.start();
    await certs(a, 1, 'a certificate');
    const pair = a.certs[0]!;
    expect(verifies(pair.cert, pebble.root, 'acme.test')).toBe(true);
    expect(verifies(pair.cert, pebble.root, 'www.acme.test')).toBe(true);
    expect(new X509Certificate(pair.cert).checkPrivateKey(createPrivateKey(pair.key))).toBe(true);
    // pebble fetched a token per name (or reused an authorization), and none stays open.
    expect(web.served.length).toBeGreaterThan(0);
    expect(a.tokenSets.length).toBeGreaterThanOrEqual(2);
    expect(a.tokens()).toEqual({});
    const obtained = a.logs.find((l) => l.msg === ACME_OBTAINED)!;
    expect(obtained.names).toEqual(['acme.test', 'www.acme.test']);
    expect(Date.parse(obtained.notAfter as string)).toBe(Date.parse(new X509Certificate(pair.cert).validTo));
    expect(a.logs.find((l) => l.msg === ACME_ORDERING)).toBeDefined();
    expect(mode(cacheDir)).toBe(0o700);
    for (const f of readdirSync(cacheDir)) expect(mode(join(cacheDir, f)), f).toBe(0o600);
    expect(readdirSync(cacheDir).sort()).toEqual(['account.key', 'acme.test.crt', 'acme.test.key']);
  });

  it.skipIf(!pebbleInstalled)('reopened on the same cache, hands over the cached certificate at once and orders nothing', async () => {
    let tokens: () => AcmeTokens = () => ({});
    const web = await challengeServer(() => tokens());
    const pebble = await startPebble({ httpPort: web.port });
    const cacheDir = tempDir('hotproxy-acme-');
    const first = await openAcme({ domains: ['acme.test'], directory: pebble.directory, caFile: pebble.caFile, cacheDir });
    tokens = first.tokens;
    first.acme.start();
    await certs(first, 1, 'a certificate');
    await first.acme.stop();
    const accountKey = readFileSync(join(cacheDir, 'account.key'), 'utf8');

    const again = await openAcme({ domains: ['acme.test'], directory: pebble.directory, caFile: pebble.caFile, cacheDir });
    // Before start(): the first workers get it with their config.
    expect(again.certs).toEqual(first.certs);
    expect(again.logs.find((l) => l.msg === ACME_CACHED)?.names).toEqual(['acme.test']);
    again.acme.start();
    // start() decides at once: the next order is the renewal, far ahead, and none ran.
    expect(again.acme.nextOrderAt).toBeGreaterThan(Date.now() + 60_000);
    expect(again.logs.find((l) => l.msg === ACME_ORDERING)).toBeUndefined();
    // The same account: its key was not made again.
    expect(readFileSync(join(cacheDir, 'account.key'), 'utf8')).toBe(accountKey);
  });

  it.skipIf(!pebbleInstalled)('orders again when the cached certificate does not name every domain, serving it meanwhile', async () => {
    let tokens: () => AcmeTokens = () => ({});
    const web = await challengeServer(() => tokens());
    const pebble = await startPebble({ httpPort: web.port });
    const cacheDir = tempDir('hotproxy-acme-');
    const first = await openAcme({ domains: ['acme.test'], directory: pebble.directory, caFile: pebble.caFile, cacheDir });
    tokens = first.tokens;
    first.acme.start();
    await certs(first, 1, 'a certificate');
    await first.acme.stop();

    const wider = await openAcme({ domains: ['acme.test', 'api.acme.test'], directory: pebble.directory, caFile: pebble.caFile, cacheDir });
    tokens = wider.tokens;
    expect(wider.certs).toEqual(first.certs);
    expect(wider.logs.find((l) => l.msg === ACME_CACHED)?.coversAll).toBe(false);
    wider.acme.start();
    await certs(wider, 2, 'a certificate for both names');
    expect(verifies(wider.certs[1]!.cert, pebble.root, 'api.acme.test')).toBe(true);
  });

  it.skipIf(!pebbleInstalled)('renews at two thirds of the lifetime, without being asked', async () => {
    let tokens: () => AcmeTokens = () => ({});
    const web = await challengeServer(() => tokens());
    const pebble = await startPebble({ httpPort: web.port, validitySeconds: 9 });
    const a = await openAcme({ domains: ['acme.test'], directory: pebble.directory, caFile: pebble.caFile, cacheDir: tempDir('hotproxy-acme-') });
    tokens = a.tokens;
    a.acme.start();
    await certs(a, 1, 'a certificate');
    const first = new X509Certificate(a.certs[0]!.cert);
    const due = renewAt({ notBefore: Date.parse(first.validFrom), notAfter: Date.parse(first.validTo) });
    await certs(a, 2, 'the renewed certificate');
    const renewed = new X509Certificate(a.certs[1]!.cert);
    expect(renewed.serialNumber).not.toBe(first.serialNumber);
    expect(verifies(a.certs[1]!.cert, pebble.root, 'acme.test')).toBe(true);
    const ordered = a.logs.filter((l) => l.msg === ACME_ORDERING);
    expect(ordered.length).toBe(2);
    // Not before it was due (pino's time is ms; the certificate's seconds).
    expect(ordered[1]!.time as number).toBeGreaterThanOrEqual(due - 1_000);
  });

  it.skipIf(!pebbleInstalled)('retries a failed order with growing delays, and stop() ends one under way at once', async () => {
    const nothing = await freePort();
    const a = await openAcme({ domains: ['acme.test'], directory: `https://127.0.0.1:${nothing}/dir`, cacheDir: tempDir('hotproxy-acme-') });
    a.acme.start();
    await waitFor(() => a.logs.filter((l) => l.msg === ACME_FAILED).length >= 3, 'three failed orders', 10_000);
    const failed = a.logs.filter((l) => l.msg === ACME_FAILED);
    expect(failed.map((l) => l.retryInMs)).toEqual([200, 400, 800]);
    expect(failed[0]!.err).toMatch(/ECONNREFUSED/);
    const t = Date.now();
    await a.acme.stop();
    expect(Date.now() - t).toBeLessThan(1_000);
    // Nothing is armed any more: no retry will run.
    expect(a.acme.nextOrderAt).toBeUndefined();
  });

  it.skipIf(!pebbleInstalled)('stop() during a validation that hangs returns promptly, with no certificate after it', async () => {
    // A challenge port that accepts and never answers: pebble's validator waits on it.
    const stuck = http.createServer(() => {});
    await new Promise<void>((r) => stuck.listen(0, '127.0.0.1', r));
    closers.push(() => { stuck.closeAllConnections(); stuck.close(); });
    const pebble = await startPebble({ httpPort: (stuck.address() as { port: number }).port });
    const a = await openAcme({ domains: ['acme.test'], directory: pebble.directory, caFile: pebble.caFile, cacheDir: tempDir('hotproxy-acme-') });
    a.acme.start();
    await waitFor(() => Object.keys(a.tokens()).length > 0, 'a token to answer', 15_000);
    const t = Date.now();
    await a.acme.stop();
    expect(Date.now() - t).toBeLessThan(1_000);
    expect(a.certs).toEqual([]);
    expect(a.logs.find((l) => l.msg === ACME_FAILED)).toBeUndefined();
  });
});

describe('renewal schedule', () => {
  beforeEach(() => { vi.useFakeTimers(); });
  afterEach(() => { vi.useRealTimers(); });

  it('is at two thirds of the lifetime (a 90-day certificate: day 60)', () => {
    const day = 86_400_000;
    const notBefore = Date.UTC(2025, 0, 1);
    expect(renewAt({ notBefore, notAfter: notBefore + 90 * day })).toBe(notBefore + 60 * day);
    // Obtained when due: its own two-thirds point.
    expect(nextRenewal({ notBefore, notAfter: notBefore + 90 * day }, notBefore)).toBe(notBefore + 60 * day);
    // A clock far behind the CA's (renewAt already past) still waits: no back-to-back orders.
    expect(nextRenewal({ notBefore, notAfter: notBefore + 90 * day }, notBefore + 80 * day)).toBe(notBefore + 80 * day + 3_600_000);
  });

  it('waits beyond what one timer can (2^31 - 1 ms) by chaining, and can be cancelled', () => {
    const now = Date.now();
    let fired = 0;
    runAt(now + 60 * 86_400_000, () => fired++);
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(60 * 86_400_000 - MAX_TIMER_MS - 1);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(1);
    expect(fired).toBe(1);
    const cancel = runAt(Date.now() + 40 * 86_400_000, () => fired++);
    vi.advanceTimersByTime(30 * 86_400_000);
    cancel();
    vi.advanceTimersByTime(20 * 86_400_000);
    expect(fired).toBe(1);
  });
});

/** One HTTPS GET of `path` on 127.0.0.1:port with SNI `name`, trusting only `root`. */
function httpsGet(port: number, name: string, root: string, path = '/'): Promise<{ status: number; serial: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, servername: name, path, headers: { host: name }, ca: root, agent: false }, (res) => {
      const serial = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().serialNumber;
      res.resume().on('end', () => resolve({ status: res.statusCode!, serial }));
    });
    req.on('error', reject);
  });
}

describe('hotproxy with --acme-domain', () => {
  it.skipIf(!pebbleInstalled)('a certificate is obtained from pebble with no certificate files given', async () => {
    // pebble must know the plain port before validation starts: it is chosen here.
    const plain = await freePort();
    const pebble = await startPebble({ httpPort: plain });
    const cache = tempDir('hotproxy-acme-');
    const args = ['--listen', `127.0.0.1:${plain}`, '--listen-tls', '127.0.0.1:0', '--acme-domain', 'acme.test',
      '--acme-directory', pebble.directory, '--acme-ca', pebble.caFile, '--acme-cache', cache];
    const hp = await startHotproxy(args);
    const first = await waitFor(() => httpsGet(hp.tlsPort, 'acme.test', pebble.root), 'an HTTPS answer with a certificate from pebble', 30_000);
    expect(first.status).toBe(200);
    expect(hp.find(ACME_OBTAINED)?.names).toEqual(['acme.test']);
    await hp.stop();

    // A restart serves the cached certificate from its first handshake, and orders nothing.
    const again = await startHotproxy(args);
    expect(again.find(ACME_CACHED)).toBeDefined();
    const second = await httpsGet(again.tlsPort, 'acme.test', pebble.root);
    expect(second).toEqual(first);
    // The cached certificate names every domain and is not due: the next order is its renewal.
    const cached = again.find(ACME_CACHED)!;
    expect(cached.coversAll).toBe(true);
    expect(Date.parse(cached.renewAt as string)).toBeGreaterThan(Date.now() + 60_000);
    expect(again.find(ACME_ORDERING)).toBeUndefined();
    await again.stop();
  });

  it.skipIf(!pebbleInstalled)('renewal replaces the certificate without a restart', async () => {
    const plain = await freePort();
    const pebble = await startPebble({ httpPort: plain, validitySeconds: 9 });
    const hp = await startHotproxy(['--listen', `127.0.0.1:${plain}`, '--listen-tls', '127.0.0.1:0', '--acme-domain', 'acme.test',
      '--acme-directory', pebble.directory, '--acme-ca', pebble.caFile, '--acme-cache', tempDir('hotproxy-acme-')]);
    const first = await waitFor(() => httpsGet(hp.tlsPort, 'acme.test', pebble.root), 'a certificate from pebble', 30_000);
    const renewed = await waitFor(async () => {
      const r = await httpsGet(hp.tlsPort, 'acme.test', pebble.root);
      return r.serial !== first.serial ? r : undefined;
    }, 'handshakes to present the renewed certificate', 30_000);
    expect(renewed.status).toBe(200);
    expect(hp.logs.filter((l: { msg: string }) => l.msg === ACME_OBTAINED).length).toBeGreaterThanOrEqual(2);
    await hp.stop();
  });
});
