// What the proxy answers itself on a plain listener when TLS is on: the ACME HTTP-01
// challenges the master has open (RFC 8555 §8.3), and with --redirect-https a redirect of
// everything else. The CA fetches challenges over plain HTTP, so they are never redirected.
import type http from 'node:http';
import type { AcmeTokens } from '../ipc.js';

const CHALLENGE_PREFIX = '/.well-known/acme-challenge/';

export class EdgeAnswers {
  private tokens = new Map<string, string>();
  /** The --listen-tls port redirects go to (443 is left out of the URL). */
  httpsPort = 443;

  constructor(readonly redirect: boolean) {}

  setTokens(tokens: AcmeTokens): void {
    this.tokens = new Map(Object.entries(tokens));
  }

  /** The key authorization to answer `url` with, when it is an open challenge. */
  challenge(url: string): string | undefined {
    if (this.tokens.size === 0 || !url.startsWith(CHALLENGE_PREFIX)) return undefined;
    return this.tokens.get(url.slice(CHALLENGE_PREFIX.length));
  }

  /** Where a plain request for `url` on `host` is sent: the same place over https. */
  location(host: string | undefined, url: string): string {
    const name = host === undefined || host === '' ? 'localhost' : stripPort(host);
    const port = this.httpsPort === 443 ? '' : `:${this.httpsPort}`;
    return `https://${name}${port}${url.startsWith('/') ? url : '/'}`;
  }

  /** The node engine's request: answered here (true), or left to the backend. */
  answer(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const key = this.challenge(req.url!);
    if (key !== undefined) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': Buffer.byteLength(key) }).end(key);
      return true;
    }
    // A challenge path without an open token is the backend's (it may answer its own), never redirected.
    if (!this.redirect || req.url!.startsWith(CHALLENGE_PREFIX)) return false;
    // 308, not 301: a POST stays a POST with its body.
    res.writeHead(308, { location: this.location(req.headers.host, req.url!), 'content-length': 0 }).end();
    return true;
  }
}

function stripPort(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const colon = host.lastIndexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}
