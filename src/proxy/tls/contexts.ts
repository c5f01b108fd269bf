// The certificates a worker serves, by name, for SNI: an exact name first, then a wildcard
// one label deep (*.example.com matches a.example.com, not a.b.example.com, RFC 6125 §6.4.3),
// then the first pair, which also answers clients that send no name (an IP address).
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import type { CertPair } from '../../ipc.js';

/** TLS 1.2 and 1.3 only; Node's default cipher list is the modern one. */
export const TLS_OPTIONS = { minVersion: 'TLSv1.2' } as const satisfies tls.SecureContextOptions;

export class Contexts {
  private byName = new Map<string, tls.SecureContext>();
  private first: CertPair | undefined;
  private firstContext: tls.SecureContext | undefined;

  /** Replaces every certificate: new handshakes use these, open sessions keep theirs. */
  set(pairs: CertPair[]): void {
    const byName = new Map<string, tls.SecureContext>();
    const contexts = pairs.map((p) => tls.createSecureContext({ ...TLS_OPTIONS, cert: p.cert, key: p.key }));
    // The first pair that names a name serves it.
    pairs.forEach((p, i) => { for (const n of names(p.cert)) if (!byName.has(n)) byName.set(n, contexts[i]!); });
    this.byName = byName;
    this.first = pairs[0];
    this.firstContext = contexts[0];
  }

  /** The default server options: the first pair (none: handshakes without a name fail). */
  defaults(): tls.SecureContextOptions {
    return this.first === undefined ? { ...TLS_OPTIONS } : { ...TLS_OPTIONS, cert: this.first.cert, key: this.first.key };
  }

  pick(servername: string): tls.SecureContext | undefined {
    const name = servername.toLowerCase();
    const exact = this.byName.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    return (dot > 0 ? this.byName.get(`*${name.slice(dot)}`) : undefined) ?? this.firstContext;
  }
}

/** The DNS names of a certificate: its subjectAltName's, else its CN (lower case). */
export function names(certPem: string): string[] {
  const x = new X509Certificate(certPem);
  const san = (x.subjectAltName ?? '').split(', ').filter((e) => e.startsWith('DNS:')).map((e) => e.slice(4).toLowerCase());
  if (san.length > 0) return san;
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x.subject)?.[1];
  return cn === undefined ? [] : [cn.toLowerCase()];
}
