// STUB (the ACME helper replaces this file).
import type { AcmeTokens, CertPair } from '../ipc.js';
import type { Logger } from '../log.js';

export interface AcmeOptions {
  domains: string[];
  email?: string;
  directory: string;
  caFile?: string;
  cacheDir?: string;
  log: Logger;
  /** A certificate for `name` (obtained, renewed, or read from the cache). */
  onCert(name: string, pair: CertPair): void;
  /** The HTTP-01 challenges to answer now (all of them). */
  onTokens(tokens: AcmeTokens): void;
}

export class Acme {
  private constructor(private opts: AcmeOptions) {}

  /** Opens the cache (mode 0700) and hands over the certificates cached there. */
  static async open(opts: AcmeOptions): Promise<Acme> {
    return new Acme(opts);
  }

  /** Orders what is missing or due, in the background; renews at 2/3 of the lifetime. */
  start(): void {}

  async stop(): Promise<void> {}
}
