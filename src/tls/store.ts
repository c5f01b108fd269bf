// STUB (the certificate-store helper replaces this file): the certificate pairs from disk,
// checked, watched and reloaded; plus pairs from elsewhere (ACME) by id.
import { readFileSync } from 'node:fs';
import type { CertPair } from '../ipc.js';
import type { Logger } from '../log.js';

export interface PairFiles {
  cert: string;
  key: string;
}

export class CertStore {
  private extra = new Map<string, CertPair>();
  private constructor(private files: CertPair[], private onChange: (pairs: CertPair[]) => void) {}

  /** Reads and checks every pair; a TlsError (one line) if one is unreadable or mismatched. */
  static async open(files: PairFiles[], _log: Logger, onChange: (pairs: CertPair[]) => void): Promise<CertStore> {
    return new CertStore(files.map((f) => ({ cert: readFileSync(f.cert, 'utf8'), key: readFileSync(f.key, 'utf8') })), onChange);
  }

  /** Every pair now: the files' in their order, then the others. */
  pairs(): CertPair[] {
    return [...this.files, ...this.extra.values()];
  }

  /** A pair that comes from elsewhere (ACME), replacing the one of that id. */
  setExtra(id: string, pair: CertPair): void {
    this.extra.set(id, pair);
    this.onChange(this.pairs());
  }

  close(): void {}
}
