// The ACME cache directory: the account key and the certificates, kept across restarts so that a
// restart neither registers again nor orders again (Let's Encrypt limits both). It holds private
// keys, so it is the owner's alone: the directory 0700, key files 0600.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { crypto as acmeCrypto } from 'acme-client';
import type { CertPair } from '../ipc.js';
import { AcmeError, describe } from '../errors.js';
import { lifetimeOf, type Lifetime } from './schedule.js';

/** `$XDG_STATE_HOME/hotproxy/acme`, else `~/.local/state/hotproxy/acme` (the XDG default). */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const state = env.XDG_STATE_HOME;
  // The XDG spec says a relative value is to be ignored.
  const base = state && isAbsolute(state) ? state : join(homedir(), '.local', 'state');
  return join(base, 'hotproxy', 'acme');
}

/** A cached certificate that can serve, and what is known about it. */
export interface CachedCert {
  pair: CertPair;
  lifetime: Lifetime;
  /** It names every domain asked for; if not, it serves the ones it has while a new one is ordered. */
  coversAll: boolean;
}

export class AcmeCache {
  private constructor(readonly dir: string) {}

  /** Creates the directory (0700), or tightens an existing one to 0700. */
  static open(dir: string = defaultCacheDir()): AcmeCache {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
    } catch (err) {
      throw new AcmeError(`cannot use the ACME cache ${dir}: ${describe(err)}`);
    }
    return new AcmeCache(dir);
  }

  /** The account key (PEM), created on first use: the same account across restarts. */
  async accountKey(): Promise<string> {
    const file = join(this.dir, 'account.key');
    const existing = readIfThere(file);
    if (existing !== undefined) {
      try {
        createPrivateKey(existing);
      } catch (err) {
        throw new AcmeError(`the ACME account key ${file} is not a private key: ${describe(err)}`);
      }
      return existing;
    }
    const key = (await acmeCrypto.createPrivateEcdsaKey('P-256')).toString();
    writePrivate(file, key);
    return key;
  }

  /** The certificate stored for `names`, if it is readable, matches its key, and has not expired. */
  loadCert(names: string[], now = Date.now()): CachedCert | undefined {
    const base = this.base(names);
    const cert = readIfThere(`${base}.crt`);
    const key = readIfThere(`${base}.key`);
    if (cert === undefined || key === undefined) return undefined;
    try {
      const x = new X509Certificate(cert);
      // A crash between writing the key and the certificate leaves a pair that does not match.
      if (!x.checkPrivateKey(createPrivateKey(key))) return undefined;
      const lifetime = lifetimeOf(cert);
      if (now >= lifetime.notAfter) return undefined;
      const coversAll = names.every((n) => x.checkHost(n, { wildcards: true }) !== undefined);
      return { pair: { cert, key }, lifetime, coversAll };
    } catch {
      return undefined;
    }
  }

  saveCert(names: string[], pair: CertPair): void {
    const base = this.base(names);
    // Key first: a crash in between leaves a mismatch, which loadCert refuses, never a new
    // certificate with an old key.
    writePrivate(`${base}.key`, pair.key);
    writePrivate(`${base}.crt`, pair.cert);
  }

  /** One certificate per set of names, filed under the first (the one users name first). */
  private base(names: string[]): string {
    return join(this.dir, names[0]!.replace(/[^a-zA-Z0-9.-]/g, '_'));
  }
}

function readIfThere(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AcmeError(`cannot read ${file}: ${describe(err)}`);
  }
}

/** Written whole or not at all (a temp file renamed), and never readable by others, even briefly. */
function writePrivate(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, file);
}
