// Certificates by ACME for the --acme-domain names: one certificate naming them all, read from
// the cache at start, ordered in the background when missing or past two thirds of its
// lifetime, and retried with backoff on failure while the certificate in hand serves on.
import { readFileSync } from 'node:fs';
import type { AcmeTokens, CertPair } from '../ipc.js';
import type { Logger } from '../log.js';
import { Backoff } from '../backoff.js';
import { AcmeError, describe } from '../errors.js';
import { ACME_CACHED, ACME_CACHE_WRITE_FAILED, ACME_FAILED, ACME_OBTAINED, ACME_ORDERING } from '../messages.js';
import { AcmeCache } from './cache.js';
import { orderCertificate } from './client.js';
import { lifetimeOf, nextRenewal, renewAt, runAt, type Lifetime } from './schedule.js';

export interface AcmeOptions {
  domains: string[];
  email?: string;
  directory: string;
  caFile?: string;
  /** Default: $XDG_STATE_HOME/hotproxy/acme, else ~/.local/state/hotproxy/acme. */
  cacheDir?: string;
  log: Logger;
  /** A certificate for `name` (obtained, renewed, or read from the cache). */
  onCert(name: string, pair: CertPair): void;
  /** The HTTP-01 challenges to answer now (all of them); a promise, if given, settles once they are. */
  onTokens(tokens: AcmeTokens): void | Promise<void>;
  /** Delays between failed orders (default 1 min doubling to 1 h: Let's Encrypt counts failures per hour). */
  retryMinMs?: number;
  retryMaxMs?: number;
}

interface Current {
  lifetime: Lifetime;
  coversAll: boolean;
}

export class Acme {
  private readonly names: string[];
  private readonly log: Logger;
  private current: Current | undefined;
  private backoff: Backoff;
  private readonly tokens = new Map<string, string>();
  private readonly abort = new AbortController();
  private cancelTimer: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private started = false;
  private stopped = false;

  private armedAt: number | undefined;
  private constructor(private readonly opts: AcmeOptions, private readonly cache: AcmeCache, private readonly accountKey: string, private readonly ca: string | undefined) {
    this.names = [...new Set(opts.domains.map((d) => d.toLowerCase()))];
    this.log = opts.log.child({ component: 'acme' });
    this.backoff = this.newBackoff();
  }

  /** Opens the cache (mode 0700) and hands over the certificate cached there. */
  static async open(opts: AcmeOptions): Promise<Acme> {
    if (opts.domains.length === 0) throw new AcmeError('no domain to obtain a certificate for');
    let ca: string | undefined;
    if (opts.caFile !== undefined) {
      try {
        ca = readFileSync(opts.caFile, 'utf8');
      } catch (err) {
        throw new AcmeError(`cannot read --acme-ca ${opts.caFile}: ${describe(err)}`);
      }
    }
    const cache = AcmeCache.open(opts.cacheDir);
    const acme = new Acme(opts, cache, await cache.accountKey(), ca);
    acme.loadCached();
    return acme;
  }

  /** Orders what is missing or due, in the background; renews at 2/3 of the lifetime. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    const c = this.current;
    this.arm(c && c.coversAll ? renewAt(c.lifetime) : Date.now());
  }

  /** Cancels the renewal timer and any order under way; resolves once nothing of it runs. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTimer?.();
    this.armedAt = undefined;
    this.abort.abort();
    this.backoff.cancel();
    await this.running;
  }

  private loadCached(): void {
    const c = this.cache.loadCert(this.names);
    if (!c) return;
    this.current = { lifetime: c.lifetime, coversAll: c.coversAll };
    this.log.info({ names: this.names, notAfter: iso(c.lifetime.notAfter), renewAt: iso(renewAt(c.lifetime)), coversAll: c.coversAll }, ACME_CACHED);
    this.opts.onCert(this.names[0]!, c.pair);
  }

  /** When the next order is due (ms since the epoch); undefined when none is armed. */
  get nextOrderAt(): number | undefined {
    return this.armedAt;
  }

  private arm(at: number): void {
    this.cancelTimer?.();
    this.armedAt = at;
    this.cancelTimer = runAt(at, () => {
      this.armedAt = undefined;
      this.running = this.order().finally(() => (this.running = undefined));
    });
  }

  private async order(): Promise<void> {
    if (this.stopped) return;
    this.log.info({ names: this.names, directory: this.opts.directory }, ACME_ORDERING);
    let pair: CertPair;
    try {
      pair = await orderCertificate(this.names, {
        directory: this.opts.directory, accountKey: this.accountKey, email: this.opts.email, ca: this.ca,
        signal: this.abort.signal,
        publishTokens: (add, remove) => this.publishTokens(add, remove),
      });
    } catch (err) {
      if (this.stopped) return;
      const retryInMs = this.backoff.take();
      this.log.warn({ names: this.names, err: describe(err), retryInMs }, ACME_FAILED);
      this.arm(Date.now() + retryInMs);
      return;
    }
    if (this.stopped) return;
    const lifetime = lifetimeOf(pair.cert);
    this.current = { lifetime, coversAll: true };
    this.backoff = this.newBackoff();
    try {
      this.cache.saveCert(this.names, pair);
    } catch (err) {
      this.log.warn({ names: this.names, dir: this.cache.dir, err: describe(err) }, ACME_CACHE_WRITE_FAILED);
    }
    const next = nextRenewal(lifetime);
    this.log.info({ names: this.names, notAfter: iso(lifetime.notAfter), renewAt: iso(next) }, ACME_OBTAINED);
    this.opts.onCert(this.names[0]!, pair);
    this.arm(next);
  }

  private async publishTokens(add: Map<string, string>, remove: string[]): Promise<void> {
    if (this.stopped) return;
    for (const [token, keyAuth] of add) this.tokens.set(token, keyAuth);
    for (const token of remove) this.tokens.delete(token);
    await this.opts.onTokens(Object.fromEntries(this.tokens));
  }

  private newBackoff(): Backoff {
    // Only an obtained certificate starts the delays over (a new Backoff), never time alone.
    return new Backoff(this.opts.retryMinMs ?? 60_000, this.opts.retryMaxMs ?? 3_600_000);
  }
}

const iso = (ms: number): string => new Date(ms).toISOString();
