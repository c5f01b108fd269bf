// Throw-away certificates made with openssl for a test, and TLS clients that say what they saw
// (the certificate's serial, the ALPN protocol), so a test can tell one certificate from another.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';

export interface MadeCert {
  cert: string;
  key: string;
  /** PEM text of the certificate (self-signed: also its own trust root). */
  pem: string;
  /** Hex, upper case, as tls.PeerCertificate#serialNumber gives it. */
  serial: string;
}

export function tempDir(prefix = 'hotproxy-tls-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * A self-signed certificate for `names` (DNS names; 127.0.0.1 is always added as an IP SAN) in
 * `dir`, as `<base>.crt` and `<base>.key`.
 */
export function makeCert(dir: string, base: string, names: string[] = ['a.test'], opts: { days?: number; ec?: boolean } = {}): MadeCert {
  const cert = join(dir, `${base}.crt`);
  const key = join(dir, `${base}.key`);
  const san = [...names.map((n) => `DNS:${n}`), 'IP:127.0.0.1'].join(',');
  const alg = opts.ec ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'] : ['-newkey', 'rsa:2048'];
  execFileSync('openssl', ['req', '-x509', ...alg, '-nodes', '-keyout', key, '-out', cert, '-days', String(opts.days ?? 2),
    '-subj', `/CN=${names[0]}`, '-addext', `subjectAltName=${san}`], { stdio: 'ignore' });
  const pem = readFileSync(cert, 'utf8');
  return { cert, key, pem, serial: new X509Certificate(pem).serialNumber.toUpperCase() };
}

export interface Handshake {
  serial: string;
  alpn: string | false | null;
  protocol: string | null;
}

/** One TLS handshake to 127.0.0.1:port (SNI `servername`); what the server presented. */
export function handshake(port: number, servername: string, opts: { ca?: string[]; alpn?: string[] } = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, ALPNProtocols: opts.alpn ?? ['h2', 'http/1.1'], rejectUnauthorized: false, ca: opts.ca }, () => {
      const serial = s.getPeerCertificate().serialNumber.toUpperCase();
      resolve({ serial, alpn: s.alpnProtocol, protocol: s.getProtocol() });
      s.end();
    });
    s.once('error', reject);
  });
}
