// Certificates from files through real hotproxy processes: replaced on disk while HTTPS
// clients that never retry keep sending, refused when the new pair cannot serve, and refused
// at start with one line.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CERT_LOADED, CERT_RELOAD_REFUSED, CERT_RELOADED } from '../src/messages.js';
import { renameOver, renamePair, secretVolume, swapSecret } from './helpers/cert-files.js';
import { NODE_APP, runCli, startHotproxy, type Hotproxy } from './helpers/hotproxy.js';
import { handshake, makeCert, tempDir, type MadeCert } from './helpers/tls.js';
import { isAlive, waitFor } from './helpers/wait.js';

/** The promise: new handshakes get a replaced certificate within ~2 s. */
const RELOAD_MS = 2_500;

let dir: string;
beforeEach(() => { dir = tempDir('hp-tls-certs-'); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const cert = (base: string, names: string[]): MadeCert => makeCert(dir, base, names, { ec: true });

/**
 * HTTPS clients that never retry: per name, keep-alive lanes on pooled connections (whose
 * sessions keep the certificate they began with) and a lane that opens a new connection for
 * every request (a handshake each time, so it meets every certificate change). Every request
 * that does not come back 200 counts as failed.
 */
class HttpsLoad {
  ok = 0;
  failed = 0;
  errors: string[] = [];
  /** Serials the new-connection lanes were served, per name, in order of first sight. */
  served = new Map<string, string[]>();
  private running = true;
  private agents: https.Agent[] = [];
  private lanes: Promise<void>[] = [];

  constructor(private port: number, names: string[], keepAliveLanes = 3) {
    for (const name of names) {
      this.served.set(name, []);
      const agent = new https.Agent({ keepAlive: true, maxSockets: keepAliveLanes, rejectUnauthorized: false, servername: name });
      this.agents.push(agent);
      for (let i = 0; i < keepAliveLanes; i++) this.lanes.push(this.lane(name, agent));
      this.lanes.push(this.lane(name, false));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.lanes);
    for (const a of this.agents) a.destroy();
  }

  private async lane(name: string, agent: https.Agent | false): Promise<void> {
    while (this.running) await this.once(name, agent);
  }

  private once(name: string, agent: https.Agent | false): Promise<void> {
    return new Promise((resolve) => {
      let settled = false;
      const settle = (error?: string): void => {
        if (settled) return;
        settled = true;
        if (error === undefined) this.ok++;
        else {
          this.failed++;
          if (this.errors.length < 20) this.errors.push(`${name}: ${error}`);
        }
        resolve();
      };
      const req = https.get({ host: '127.0.0.1', port: this.port, path: '/', servername: name, headers: { host: name }, agent, rejectUnauthorized: false }, (res) => {
        if (agent === false) {
          const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber.toUpperCase();
          const seen = this.served.get(name)!;
          if (seen.at(-1) !== serial) seen.push(serial);
        }
        res.resume();
        res.on('end', () => settle(res.statusCode === 200 ? undefined : `status ${res.statusCode}`));
        res.on('error', (err) => settle(err.message));
        res.on('close', () => settle('response closed before its end'));
      });
      req.on('error', (err: NodeJS.ErrnoException) => settle(`${err.code ?? ''} ${err.message}${req.reusedSocket ? ' (reused connection)' : ''}`));
    });
  }
}

/** Resolves with how long it took until a new handshake for `name` is served `serial`; throws after RELOAD_MS. */
async function newHandshakesServe(hp: Hotproxy, name: string, serial: string, since: number): Promise<number> {
  await waitFor(async () => (await handshake(hp.tlsPort, name)).serial === serial, `new handshakes for ${name} to get serial ${serial}`, RELOAD_MS, 50);
  return Date.now() - since;
}

/** Lets the load run until `n` more requests have come back, so a change is judged under load. */
async function moreAnswers(load: HttpsLoad, n: number): Promise<void> {
  const from = load.ok + load.failed;
  await waitFor(() => load.ok + load.failed >= from + n, `${n} more requests`, 20_000);
}

describe('certificates from files', () => {
  it('certificate files replaced on disk while under load: new handshakes get the new certificate within 2 s, by rename and by symlink swap, and no request fails', async () => {
    const a1 = cert('a1', ['a.test']);
    const b1 = cert('b1', ['b.test']);
    const [a2, b2] = [cert('a2', ['a.test']), cert('b2', ['b.test'])];
    const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
    renamePair(live, a1);
    const vol = join(dir, 'secret');
    const secret = secretVolume(vol, b1);
    const hp = await startHotproxy(['--listen-tls', '127.0.0.1:0', '--tls-cert', live.cert, '--tls-key', live.key, '--tls-cert', secret.cert, '--tls-key', secret.key]);
    expect(hp.find(CERT_LOADED)!.certs).toEqual([
      expect.objectContaining({ cert: live.cert, names: ['a.test'] }), expect.objectContaining({ cert: secret.cert, names: ['b.test'] }),
    ]);
    expect((await handshake(hp.tlsPort, 'a.test')).serial).toBe(a1.serial);
    expect((await handshake(hp.tlsPort, 'b.test')).serial).toBe(b1.serial);

    const load = new HttpsLoad(hp.tlsPort, ['a.test', 'b.test']);
    try {
      await moreAnswers(load, 100);
      // An atomic rename per file, the cert first: for a moment the cert and key do not match.
      let t0 = Date.now();
      renamePair(live, a2);
      const byRename = await newHandshakesServe(hp, 'a.test', a2.serial, t0);
      await moreAnswers(load, 100);
      // The kubelet's swap of ..data: both files change at once.
      t0 = Date.now();
      swapSecret(vol, b2);
      const bySwap = await newHandshakesServe(hp, 'b.test', b2.serial, t0);
      await moreAnswers(load, 100);
      console.log(`new certificate served after ${byRename} ms (rename), ${bySwap} ms (symlink swap); ${load.ok} requests`);
    } finally {
      await load.stop();
    }
    expect(load.errors).toEqual([]);
    expect(load.failed).toBe(0);
    expect(load.ok).toBeGreaterThan(300);
    // The clients opening new connections met each certificate in turn, never an old one again.
    expect(load.served.get('a.test')).toEqual([a1.serial, a2.serial]);
    expect(load.served.get('b.test')).toEqual([b1.serial, b2.serial]);
    expect(hp.logs.filter((l) => l.msg === CERT_RELOADED).map((l) => [l.cert, l.serial])).toEqual([[live.cert, a2.serial], [secret.cert, b2.serial]]);
    expect(hp.find(CERT_RELOAD_REFUSED)).toBeUndefined();
    expect(await hp.stop()).toBe(0);
  });

  it('a mismatched new pair is refused with one log line and the old certificate keeps serving', async () => {
    const a = cert('a', ['a.test']);
    const b = cert('b', ['a.test']);
    const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
    renamePair(live, a);
    const hp = await startHotproxy(['--listen-tls', '127.0.0.1:0', '--tls-cert', live.cert, '--tls-key', live.key]);
    renameOver(live.cert, b.pem); // and the key stays a's
    const refused = await hp.waitForLog(CERT_RELOAD_REFUSED, () => true, 5_000);
    expect(refused).toMatchObject({ cert: live.cert, key: live.key, serial: a.serial,
      reason: `--tls-key ${live.key} is not the key of the certificate in --tls-cert ${live.cert}` });
    expect(refused.level).toBe(40); // warn
    // Three more poll ticks: still the one line, and the old certificate serves on.
    const t0 = Date.now();
    await waitFor(() => Date.now() - t0 > 3_000, 'three poll ticks', 5_000, 100);
    expect(hp.logs.filter((l) => l.msg === CERT_RELOAD_REFUSED)).toHaveLength(1);
    expect((await handshake(hp.tlsPort, 'a.test')).serial).toBe(a.serial);
    const res = await new Promise<number>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: hp.tlsPort, servername: 'a.test', rejectUnauthorized: false, agent: false }, (r) => { r.resume(); resolve(r.statusCode!); }).on('error', reject);
    });
    expect(res).toBe(200);
    // Its key comes after all: the pair serves.
    renameOver(live.key, readFileSync(b.key, 'utf8'));
    await newHandshakesServe(hp, 'a.test', b.serial, Date.now());
    expect(hp.logs.filter((l) => l.msg === CERT_RELOAD_REFUSED)).toHaveLength(1);
    expect(hp.find(CERT_RELOADED)).toMatchObject({ cert: live.cert, serial: b.serial });
    expect(await hp.stop()).toBe(0);
  });

  const startCases: Array<[string, (a: MadeCert, other: MadeCert) => string[], (a: MadeCert, other: MadeCert) => string]> = [
    ['an unreadable --tls-cert', (a) => ['--tls-cert', join(dir, 'missing.crt'), '--tls-key', a.key],
      () => `--tls-cert ${join(dir, 'missing.crt')} cannot be read: ENOENT: no such file or directory`],
    ['a --tls-key of another certificate', (a, other) => ['--tls-cert', a.cert, '--tls-key', other.key],
      (a, other) => `--tls-key ${other.key} is not the key of the certificate in --tls-cert ${a.cert}`],
  ];
  for (const [what, args, line] of startCases) {
    it(`${what} is a one-line error and exit 1 with no process left`, async () => {
      const a = cert('a', ['a.test']);
      const other = cert('other', ['a.test']);
      const r = await runCli(['--runtime-dir', dir, '--listen', '127.0.0.1:0', '--listen-tls', '127.0.0.1:0', ...args(a, other), '--log-format', 'json', '--', ...NODE_APP], {}, 20_000);
      expect(r.status).toBe(1);
      expect(r.stderr.trim().split('\n')).toEqual([`hotproxy: ${line(a, other)}`]);
      // Nothing started, or whatever did is gone: no pid it logged lives, no runtime directory left.
      const pids = [...r.stdout.matchAll(/"(?:workerPid|backendPid|pid)":(\d+)/g)].map((m) => Number(m[1]));
      expect(pids.filter(isAlive)).toEqual([]);
      expect(readdirSync(dir).filter((f) => !/\.(crt|key)$/.test(f))).toEqual([]);
    });
  }
});
