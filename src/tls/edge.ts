// The master's side of TLS: it owns the certificate files and ACME, never a TLS session. What
// it has goes to the proxy workers, which terminate TLS; they are told again on every change.
import type { Options } from '../options.js';
import type { Logger } from '../log.js';
import type { AcmeTokens, CertPair } from '../ipc.js';
import { CertStore } from './store.js';
import { Acme } from '../acme/acme.js';

/** Where the certificates and challenge tokens go: the proxy workers. */
export interface EdgeSink {
  setCerts(pairs: CertPair[]): void;
  /** Resolves once the workers answer them. */
  setTokens(tokens: AcmeTokens): Promise<void>;
}

export interface Edge {
  /** Starts what runs in the background (ACME orders) once the plain listeners serve. */
  serve(): void;
  close(): Promise<void>;
}

/**
 * Reads and checks the --tls-cert/--tls-key pairs (a bad one is a start-up error) and opens the
 * ACME cache; `sink` has the certificates before this resolves, so the first workers start
 * with them.
 */
export async function openEdge(o: Options, log: Logger, sink: EdgeSink): Promise<Edge | undefined> {
  if (o.listenTls.length === 0) return undefined;
  const store = await CertStore.open(o.tlsCert.map((cert, i) => ({ cert, key: o.tlsKey[i]! })), log, (pairs) => sink.setCerts(pairs));
  const acme = o.acmeDomain.length === 0 ? undefined : await Acme.open({
    domains: o.acmeDomain, email: o.acmeEmail, directory: o.acmeDirectory, caFile: o.acmeCa, cacheDir: o.acmeCache, log,
    onCert: (name, pair) => store.setExtra(`acme:${name}`, pair),
    onTokens: (tokens) => sink.setTokens(tokens),
  });
  sink.setCerts(store.pairs());
  return {
    serve: () => acme?.start(),
    close: async () => {
      await acme?.stop();
      store.close();
    },
  };
}
