// The certificate store on real files and real openssl certificates: what it accepts at start,
// what it says, and how it follows files replaced by rename and by the Kubernetes symlink swap.
import { X509Certificate } from 'node:crypto';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TlsError } from '../../src/errors.js';
import type { CertPair } from '../../src/ipc.js';
import { CERT_LOADED, CERT_RELOAD_REFUSED, CERT_RELOADED } from '../../src/messages.js';
import { checkPair, CertStore, type PairFiles, type StoreOptions } from '../../src/tls/store.js';
import { renameOver, renamePair, secretVolume, swapSecret } from '../helpers/cert-files.js';
import { makeCert, tempDir, type MadeCert } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

type Line = Record<string, unknown> & { msg: string; level: number; component?: string };

let dir: string;
let stores: CertStore[];
beforeEach(() => { dir = tempDir('hp-cert-store-'); stores = []; });
afterEach(() => { for (const s of stores) s.close(); rmSync(dir, { recursive: true, force: true }); });

const cert = (base: string, names: string[] = ['a.test'], opts: { days?: number } = {}): MadeCert => makeCert(dir, base, names, { ec: true, ...opts });
const serialOf = (p: CertPair): string => new X509Certificate(p.cert).serialNumber.toUpperCase();

async function open(files: PairFiles[], opts?: StoreOptions): Promise<{ store: CertStore; lines: Line[]; changes: CertPair[][] }> {
  const lines: Line[] = [];
  const changes: CertPair[][] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => { lines.push(JSON.parse(l) as Line); } });
  const store = await CertStore.open(files, log, (p) => changes.push(p), opts);
  stores.push(store);
  return { store, lines, changes };
}

const count = (lines: Line[], msg: string): number => lines.filter((l) => l.msg === msg).length;

/** The TlsError `open` rejects with, after checking it is one line. */
async function refusedAtOpen(files: PairFiles[]): Promise<string> {
  const err = await open(files).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(TlsError);
  expect((err as TlsError).code).toBe('E_TLS');
  const msg = (err as TlsError).message;
  expect(msg).not.toContain('\n');
  return msg;
}

describe('certificate store at start', () => {
  it('loads each pair, a chain in the cert file too, and logs the names and expiry of all of them in one line', async () => {
    const a = cert('a', ['a.test', 'www.a.test']);
    const b = cert('b', ['b.test']);
    const issuer = cert('issuer', ['issuer.test']);
    // A cert file that holds the chain: the leaf first, then what signed it.
    const chain = join(dir, 'b-chain.crt');
    writeFileSync(chain, b.pem + readFileSync(issuer.cert, 'utf8'));
    const { store, lines, changes } = await open([{ cert: a.cert, key: a.key }, { cert: chain, key: b.key }]);
    expect(store.pairs().map(serialOf)).toEqual([a.serial, b.serial]);
    expect(store.pairs()[1]!.cert).toContain(readFileSync(issuer.cert, 'utf8'));
    expect(changes).toEqual([]); // the caller sends pairs() itself once it is open
    const loaded = lines.filter((l) => l.msg === CERT_LOADED);
    expect(loaded).toHaveLength(1);
    expect(loaded[0]!.component).toBe('tls');
    expect(loaded[0]!.certs).toEqual([
      { cert: a.cert, names: ['a.test', 'www.a.test'], notAfter: new Date(new X509Certificate(a.pem).validTo).toISOString() },
      { cert: chain, names: ['b.test'], notAfter: new Date(new X509Certificate(b.pem).validTo).toISOString() },
    ]);
  });

  it('refuses a key of another certificate with a TlsError of one line naming both files', async () => {
    const a = cert('a');
    const b = cert('b');
    const msg = await refusedAtOpen([{ cert: a.cert, key: b.key }]);
    expect(msg).toBe(`--tls-key ${b.key} is not the key of the certificate in --tls-cert ${a.cert}`);
  });

  it('refuses an unreadable, a missing or a garbage file with a TlsError of one line naming it and why', async () => {
    const a = cert('a');
    const missing = join(dir, 'missing.crt');
    expect(await refusedAtOpen([{ cert: missing, key: a.key }])).toBe(`--tls-cert ${missing} cannot be read: ENOENT: no such file or directory`);
    expect(await refusedAtOpen([{ cert: dir, key: a.key }])).toBe(`--tls-cert ${dir} cannot be read: EISDIR: illegal operation on a directory`);
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not a certificate\n');
    expect(await refusedAtOpen([{ cert: garbage, key: a.key }])).toBe(`--tls-cert ${garbage} is not a PEM certificate: no start line`);
    expect(await refusedAtOpen([{ cert: a.cert, key: garbage }])).toMatch(new RegExp(`^--tls-key ${garbage} is not a PEM private key`));
    if (process.getuid?.() !== 0) { // root reads a file of mode 000 anyway
      chmodSync(a.key, 0);
      expect(await refusedAtOpen([{ cert: a.cert, key: a.key }])).toBe(`--tls-key ${a.key} cannot be read: EACCES: permission denied`);
    }
  });

  it('refuses a certificate past its notAfter, saying when it expired', async () => {
    const a = cert('a', ['a.test'], { days: 1 });
    const notAfter = new Date(new X509Certificate(a.pem).validTo);
    await expect(checkPair(a, new Date(notAfter.getTime() + 1000))).rejects.toThrow(`--tls-cert ${a.cert} expired on ${notAfter.toISOString()}`);
    await expect(checkPair(a, new Date(notAfter.getTime() - 60_000))).resolves.toMatchObject({ serial: a.serial });
  });
});

describe('certificate store reloading', () => {
  it('serves a pair replaced by rename, cert then key, without refusing the moment they do not match', async () => {
    const a = cert('a');
    const files = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
    renamePair(files, a);
    const { store, lines, changes } = await open([files]);
    const b = cert('b');
    renamePair(files, b);
    await waitFor(() => changes.length > 0, 'the new pair', 2_500);
    expect(changes.at(-1)!.map(serialOf)).toEqual([b.serial]);
    expect(store.pairs().map(serialOf)).toEqual([b.serial]);
    const reloaded = lines.filter((l) => l.msg === CERT_RELOADED);
    expect(reloaded).toEqual([expect.objectContaining({ cert: files.cert, names: ['a.test'], serial: b.serial, component: 'tls' })]);
    expect(reloaded[0]!.notAfter).toBe(new Date(new X509Certificate(b.pem).validTo).toISOString());
    expect(count(lines, CERT_RELOAD_REFUSED)).toBe(0);
  });

  it('waits out a key that lands less than a poll interval after its cert and refuses nothing', async () => {
    const a = cert('a');
    const files = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
    renamePair(files, a);
    const { store, lines, changes } = await open([files], { pollMs: 200 });
    const b = cert('b');
    renameOver(files.cert, b.pem);
    // Most often a poll tick falls in between and sees the new cert with the old key.
    const t0 = Date.now();
    await waitFor(() => Date.now() - t0 > 150, 'three quarters of a poll interval');
    renameOver(files.key, readFileSync(b.key, 'utf8'));
    await waitFor(() => changes.length > 0, 'the new pair', 2_000);
    expect(store.pairs().map(serialOf)).toEqual([b.serial]);
    expect(count(lines, CERT_RELOAD_REFUSED)).toBe(0);
  });

  it('serves the new pair of a Kubernetes secret once ..data is swapped to a new directory', async () => {
    const a = cert('a');
    const vol = join(dir, 'secret');
    const files = secretVolume(vol, a);
    const { store, lines, changes } = await open([files]);
    expect(store.pairs().map(serialOf)).toEqual([a.serial]);
    const b = cert('b');
    swapSecret(vol, b);
    await waitFor(() => changes.length > 0, 'the swapped pair', 2_500);
    expect(store.pairs().map(serialOf)).toEqual([b.serial]);
    // And again: the directory the first swap removed is not what is watched.
    const c = cert('c');
    swapSecret(vol, c);
    await waitFor(() => changes.length > 1, 'the second swap', 2_500);
    expect(store.pairs().map(serialOf)).toEqual([c.serial]);
    expect(lines.filter((l) => l.msg === CERT_RELOADED).map((l) => l.serial)).toEqual([b.serial, c.serial]);
    expect(count(lines, CERT_RELOAD_REFUSED)).toBe(0);
  });

  it('sees a replaced pair by the stat poll alone, as where directory events never come', async () => {
    const a = cert('a');
    const files = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
    renamePair(files, a);
    const { store, changes } = await open([files], { events: false, pollMs: 200 });
    const b = cert('b');
    renamePair(files, b);
    await waitFor(() => changes.length > 0, 'the new pair by the poll', 1_500);
    expect(store.pairs().map(serialOf)).toEqual([b.serial]);
  });

  it('refuses a mismatched new pair with one log line however long it stays, keeps the old pair, and takes the next good one', async () => {
    const a = cert('a');
    const files = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
    renamePair(files, a);
    const { store, lines, changes } = await open([files], { pollMs: 200 });
    const b = cert('b');
    renameOver(files.cert, b.pem); // the key stays a's
    const refused = await waitFor(() => lines.find((l) => l.msg === CERT_RELOAD_REFUSED), 'the refusal', 2_000);
    expect(refused).toMatchObject({ cert: files.cert, key: files.key, serial: a.serial, component: 'tls',
      reason: `--tls-key ${files.key} is not the key of the certificate in --tls-cert ${files.cert}` });
    // Five more ticks: no second line, and the old pair serves on.
    const t0 = Date.now();
    await waitFor(() => Date.now() - t0 > 1_000, 'five poll ticks');
    expect(count(lines, CERT_RELOAD_REFUSED)).toBe(1);
    expect(store.pairs().map(serialOf)).toEqual([a.serial]);
    expect(changes).toEqual([]);
    // The key arrives: served.
    renameOver(files.key, readFileSync(b.key, 'utf8'));
    await waitFor(() => changes.length > 0, 'the completed pair', 2_000);
    expect(store.pairs().map(serialOf)).toEqual([b.serial]);
    // Garbage is a new bad state: refused once more, b serving on.
    renameOver(files.cert, 'garbage');
    await waitFor(() => count(lines, CERT_RELOAD_REFUSED) === 2, 'the second refusal', 2_000);
    expect(lines.filter((l) => l.msg === CERT_RELOAD_REFUSED)[1]!.reason).toBe(`--tls-cert ${files.cert} is not a PEM certificate: no start line`);
    expect(store.pairs().map(serialOf)).toEqual([b.serial]);
    expect(count(lines, CERT_RELOADED)).toBe(1);
  });

  it('refuses a deleted cert file once and serves it again when it comes back', async () => {
    const a = cert('a');
    const files = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
    renamePair(files, a);
    const { store, lines, changes } = await open([files], { pollMs: 200 });
    rmSync(files.cert);
    await waitFor(() => count(lines, CERT_RELOAD_REFUSED) === 1, 'the refusal', 2_000);
    expect(lines.find((l) => l.msg === CERT_RELOAD_REFUSED)!.reason).toBe(`--tls-cert ${files.cert} cannot be read: ENOENT: no such file or directory`);
    const b = cert('b');
    renamePair(files, b);
    await waitFor(() => changes.length > 0, 'the new pair', 2_000);
    expect(store.pairs().map(serialOf)).toEqual([b.serial]);
    expect(count(lines, CERT_RELOAD_REFUSED)).toBe(1);
  });

  it('says nothing and sends nothing for files touched or rewritten with the same content', async () => {
    const a = cert('a');
    const files = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
    renamePair(files, a);
    const { store, lines, changes } = await open([files], { pollMs: 200 });
    renamePair(files, a);
    await store.settled();
    expect(changes).toEqual([]);
    expect(lines.map((l) => l.msg)).toEqual([CERT_LOADED]);
  });

  it('keeps the pairs set from elsewhere after the files and sends every pair on each change', async () => {
    const a = cert('a');
    const acme = cert('acme', ['acme.test']);
    const files = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
    renamePair(files, a);
    const { store, changes } = await open([files]);
    store.setExtra('acme:acme.test', { cert: acme.pem, key: readFileSync(acme.key, 'utf8') });
    expect(changes.at(-1)!.map(serialOf)).toEqual([a.serial, acme.serial]);
    const b = cert('b');
    renamePair(files, b);
    await waitFor(() => changes.length > 1, 'the new pair', 2_500);
    expect(changes.at(-1)!.map(serialOf)).toEqual([b.serial, acme.serial]);
  });

  it('follows nothing once closed', async () => {
    const a = cert('a');
    const files = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
    renamePair(files, a);
    const { store, changes } = await open([files], { pollMs: 100 });
    store.close();
    renamePair(files, cert('b'));
    const t0 = Date.now();
    await waitFor(() => Date.now() - t0 > 400, 'four poll intervals');
    expect(changes).toEqual([]);
    expect(store.pairs().map(serialOf)).toEqual([a.serial]);
  });
});
