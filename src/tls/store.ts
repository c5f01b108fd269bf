// The certificate pairs the proxy workers serve: the --tls-cert/--tls-key files, read and
// checked at start (a bad one stops the start with one line), then watched, and each changed
// pair checked again before it replaces the one serving; plus pairs from elsewhere (ACME) by id.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import { describe, TlsError } from '../errors.js';
import type { CertPair } from '../ipc.js';
import type { Logger } from '../log.js';
import { CERT_LOADED, CERT_RELOAD_REFUSED, CERT_RELOADED } from '../messages.js';
import { names } from '../proxy/tls/contexts.js';
import { DirWatch, POLL_MS, signature } from './watch.js';

export interface PairFiles {
  cert: string;
  key: string;
}

/** A pair that passed the checks, with what the logs say about it. */
interface Checked {
  pair: CertPair;
  names: string[];
  serial: string;
  notAfter: string;
}

/** One --tls-cert/--tls-key pair and where its reloading stands. */
interface Entry {
  files: PairFiles;
  current: Checked;
  /** The files' signatures when last settled: loaded, or refused and logged. */
  seen: string;
  /** Since when the files have changed into something that does not pass, not yet logged. */
  failingSince: number | undefined;
}

export interface StoreOptions {
  pollMs?: number;
  /** false: no directory watch, the stat poll alone. */
  events?: boolean;
}

export class CertStore {
  private extra = new Map<string, CertPair>();
  private watch: DirWatch | undefined;
  private running: Promise<void> | undefined;
  /** A look was asked for while one ran; `poll` if one of those was a poll tick. */
  private again: { poll: boolean } | undefined;
  private closed = false;

  private constructor(private entries: Entry[], private log: Logger, private onChange: (pairs: CertPair[]) => void, private pollMs: number) {}

  /** Reads and checks every pair; a TlsError (one line) if one is unreadable or mismatched. */
  static async open(files: PairFiles[], log: Logger, onChange: (pairs: CertPair[]) => void, opts: StoreOptions = {}): Promise<CertStore> {
    const tlsLog = log.child({ component: 'tls' });
    const entries: Entry[] = [];
    for (const f of files) {
      // Stat'ed before the read: a change between the two is seen as one at the first look.
      const seen = await pairSignature(f);
      entries.push({ files: f, current: await checkPair(f, new Date()), seen, failingSince: undefined });
    }
    const store = new CertStore(entries, tlsLog, onChange, opts.pollMs ?? POLL_MS);
    if (entries.length > 0) {
      tlsLog.info({ certs: entries.map((e) => ({ cert: e.files.cert, names: e.current.names, notAfter: e.current.notAfter })) }, CERT_LOADED);
      store.watch = new DirWatch(files.flatMap((f) => [f.cert, f.key]), { check: (poll) => store.check(poll), pollMs: store.pollMs, events: opts.events });
    }
    return store;
  }

  /** Every pair now: the files' in their order, then the others. */
  pairs(): CertPair[] {
    return [...this.entries.map((e) => e.current.pair), ...this.extra.values()];
  }

  /** A pair that comes from elsewhere (ACME), replacing the one of that id. */
  setExtra(id: string, pair: CertPair): void {
    this.extra.set(id, pair);
    this.onChange(this.pairs());
  }

  close(): void {
    this.closed = true;
    this.watch?.close();
  }

  /** Resolves once a look at the files has run after this call (tests; the timers need none). */
  async settled(): Promise<void> {
    this.check(false);
    while (this.running !== undefined) await this.running;
  }

  /** One look at every pair's files; looks asked for while one runs make one more after it. */
  private check(poll: boolean): void {
    if (this.closed) return;
    if (this.running !== undefined) {
      this.again = { poll: poll || (this.again?.poll ?? false) };
      return;
    }
    this.running = this.checkAll(poll).finally(() => {
      this.running = undefined;
      const again = this.again;
      this.again = undefined;
      if (again !== undefined) this.check(again.poll);
    });
  }

  private async checkAll(poll: boolean): Promise<void> {
    let changed = false;
    for (const e of this.entries) {
      try {
        changed = (await this.checkEntry(e, poll)) || changed;
      } catch (err) {
        // A bug here must not end the master; the pair serving goes on serving.
        this.log.error({ err, cert: e.files.cert }, CERT_RELOAD_REFUSED);
      }
    }
    if (changed && !this.closed) this.onChange(this.pairs());
  }

  /** True if the pair serving was replaced. */
  private async checkEntry(e: Entry, poll: boolean): Promise<boolean> {
    const sig = await pairSignature(e.files);
    if (sig === e.seen && e.failingSince === undefined) return false;
    const now = Date.now();
    let next: Checked;
    try {
      next = await checkPair(e.files, new Date(now));
    } catch (err) {
      // A cert and a key written one after the other do not match in between: only what has
      // not passed for a whole poll interval (two ticks) is refused, and then once, until the
      // files change again. Checks between ticks (directory events) never start the count.
      e.failingSince ??= now;
      if (poll && now - e.failingSince >= this.pollMs * 0.9) {
        this.log.warn({ cert: e.files.cert, key: e.files.key, reason: describe(err), serial: e.current.serial }, CERT_RELOAD_REFUSED);
        e.seen = sig;
        e.failingSince = undefined;
      }
      return false;
    }
    e.seen = sig;
    e.failingSince = undefined;
    // Touched, or rewritten with the same content: nothing new to serve or to say.
    if (next.pair.cert === e.current.pair.cert && next.pair.key === e.current.pair.key) return false;
    e.current = next;
    this.log.info({ cert: e.files.cert, names: next.names, serial: next.serial, notAfter: next.notAfter }, CERT_RELOADED);
    return true;
  }
}

async function pairSignature(f: PairFiles): Promise<string> {
  return `${await signature(f.cert)} ${await signature(f.key)}`;
}

/**
 * Reads a pair and checks that it can serve: the certificate parses (the first in the file is
 * the leaf, the rest its chain), has not expired, and the key is the leaf's. The TlsError's
 * message is one line naming the file and the reason.
 */
export async function checkPair(f: PairFiles, now: Date): Promise<Checked> {
  const cert = await read('--tls-cert', f.cert);
  const key = await read('--tls-key', f.key);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new TlsError(`--tls-cert ${f.cert} is not a PEM certificate: ${opensslReason(err)}`);
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new TlsError(`--tls-key ${f.key} is not a PEM private key: ${opensslReason(err)}`);
  }
  if (!leaf.checkPrivateKey(privateKey)) throw new TlsError(`--tls-key ${f.key} is not the key of the certificate in --tls-cert ${f.cert}`);
  const notAfter = new Date(leaf.validTo);
  if (notAfter.getTime() <= now.getTime()) throw new TlsError(`--tls-cert ${f.cert} expired on ${notAfter.toISOString()}`);
  try {
    // What the workers will do with it: a chain certificate that does not parse fails here.
    tls.createSecureContext({ cert, key });
  } catch (err) {
    throw new TlsError(`--tls-cert ${f.cert} with --tls-key ${f.key} cannot serve: ${opensslReason(err)}`);
  }
  return { pair: { cert, key }, names: names(cert), serial: leaf.serialNumber.toUpperCase(), notAfter: notAfter.toISOString() };
}

async function read(flag: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    // "ENOENT: no such file or directory", without the syscall and path (", open '<file>'") the line has.
    throw new TlsError(`${flag} ${file} cannot be read: ${describe(err).replace(/, \w+( '.*')?$/, '')}`);
  }
}

/** "error:0480006C:PEM routines::no start line" → "no start line". */
function opensslReason(err: unknown): string {
  const m = describe(err).split('\n')[0]!;
  return m.startsWith('error:') ? m.slice(m.lastIndexOf(':') + 1) : m;
}
