// One certificate order over acme-client: account, order, HTTP-01 challenges, finalize,
// download. The polling is ours rather than acme-client's waitForValidStatus, whose sleeps
// cannot be cancelled; so is the retrying (acme.ts), so that stop() ends an order at once.
import { AsyncLocalStorage } from 'node:async_hooks';
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import * as acme from 'acme-client';
import type { CertPair } from '../ipc.js';
import { AcmeError, describe } from '../errors.js';

export interface OrderOptions {
  directory: string;
  accountKey: string;
  email?: string;
  /** PEM roots for the directory's own TLS (a private or test CA); the system's otherwise. */
  ca?: string;
  signal: AbortSignal;
  /** The HTTP-01 answers to serve now (token → key authorization); settles once they serve. */
  publishTokens(add: Map<string, string>, remove: string[]): void | Promise<void>;
}

/** How long an order may take in all; Let's Encrypt validates within seconds. */
const ORDER_TIMEOUT_MS = 120_000;

/** Obtains one certificate naming all of `names` (the first is its common name). */
export async function orderCertificate(names: string[], o: OrderOptions): Promise<CertPair> {
  const flow = new Flow(o.signal, o.ca);
  try {
    return await flows.run(flow, () => runOrder(names, o));
  } catch (err) {
    if (o.signal.aborted) throw new AcmeError('stopped');
    throw new AcmeError(`${flow.step}: ${flow.explain(err)}`);
  } finally {
    flow.close();
  }
}

async function runOrder(names: string[], o: OrderOptions): Promise<CertPair> {
  const flow = flows.getStore()!;
  const deadline = Date.now() + ORDER_TIMEOUT_MS;
  const client = new acme.Client({ directoryUrl: o.directory, accountKey: o.accountKey });
  flow.step = 'account';
  // Looked up first: acme-client would send the new-account fields to an existing account as an
  // update, which a CA may refuse (pebble does) as an empty one.
  try {
    await client.createAccount({ onlyReturnExisting: true });
  } catch {
    // Using hotproxy's ACME is agreeing to the CA's terms, as with Caddy or certbot --agree-tos.
    await client.createAccount({ termsOfServiceAgreed: true, ...(o.email ? { contact: [`mailto:${o.email}`] } : {}) });
  }
  flow.step = 'new order';
  let order = await client.createOrder({ identifiers: names.map((value) => ({ type: 'dns', value })) });
  flow.step = 'authorizations';
  const authzs = await client.getAuthorizations(order);
  // A CA may reuse an authorization validated recently: nothing to answer for that name.
  const open = authzs.filter((a) => a.status === 'pending');
  const bad = authzs.find((a) => a.status !== 'pending' && a.status !== 'valid');
  if (bad) throw new Error(`the authorization for ${bad.identifier.value} is ${bad.status}`);
  const challenges = open.map((a) => {
    const c = a.challenges.find((ch) => ch.type === 'http-01');
    if (!c) throw new Error(`no http-01 challenge offered for ${a.identifier.value}`);
    return c;
  });
  if (challenges.length) {
    const tokens = new Map<string, string>();
    for (const c of challenges) tokens.set(c.token, await client.getChallengeKeyAuthorization(c));
    flow.step = 'challenge';
    await o.publishTokens(tokens, []);
    try {
      for (const c of challenges) await client.completeChallenge(c);
      order = await poll(() => client.getOrder(order), (s) => s !== 'pending', deadline, o.signal);
    } finally {
      await o.publishTokens(new Map(), [...tokens.keys()]);
    }
    if (order.status === 'invalid') throw new Error(await whyInvalid(client, order));
  }
  flow.step = 'finalize';
  const key = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
  const [, csr] = await acme.crypto.createCsr({ commonName: names[0], altNames: names }, key);
  order = await client.finalizeOrder(order, csr);
  order = await poll(() => client.getOrder(order), (s) => s === 'valid' || s === 'invalid', deadline, o.signal);
  if (order.status === 'invalid') throw new Error('the CA refused to issue the certificate');
  flow.step = 'download';
  const cert = await client.getCertificate(order);
  return { cert, key };
}

/** Re-reads `get()` until `done(status)`, from every 250 ms to every 2 s, until the deadline. */
async function poll<T extends { status: string }>(get: () => Promise<T>, done: (s: string) => boolean, deadline: number, signal: AbortSignal): Promise<T> {
  for (let wait = 250; ; wait = Math.min(wait * 2, 2_000)) {
    const item = await get();
    if (done(item.status)) return item;
    if (Date.now() + wait > deadline) throw new Error(`still ${item.status} after ${ORDER_TIMEOUT_MS / 1000} s`);
    await sleep(wait, undefined, { signal, ref: false });
  }
}

/** The CA's reason, from the challenge that failed. */
async function whyInvalid(client: acme.Client, order: acme.Order): Promise<string> {
  const authzs = await client.getAuthorizations(order);
  for (const a of authzs) {
    const err = a.challenges.find((c) => c.error)?.error as { detail?: string } | undefined;
    if (err) return `${a.identifier.value}: ${err.detail ?? 'validation failed'}`;
  }
  return 'the order became invalid';
}

/**
 * What one order's requests share: the trust roots, the abort signal, and the last transport
 * error (acme-client replaces a failed connection's error with a TypeError of its own).
 */
class Flow {
  step = 'directory';
  transportError: Error | undefined;
  readonly httpsAgent: https.Agent;
  readonly httpAgent: http.Agent;

  constructor(readonly signal: AbortSignal, ca: string | undefined) {
    const record = (s: Duplex | null | undefined): void => { s?.once('error', (e: Error) => (this.transportError = e)); };
    this.httpsAgent = new (class extends https.Agent {
      override createConnection(opts: https.RequestOptions, cb?: (err: Error | null, s: Duplex) => void): Duplex | null | undefined {
        const s = super.createConnection(opts, cb);
        record(s);
        return s;
      }
    })({ ca });
    this.httpAgent = new (class extends http.Agent {
      override createConnection(opts: http.ClientRequestArgs, cb?: (err: Error | null, s: Duplex) => void): Duplex | null | undefined {
        const s = super.createConnection(opts, cb);
        record(s);
        return s;
      }
    })();
  }

  explain(err: unknown): string {
    if (err instanceof TypeError && this.transportError) return describe(this.transportError);
    return describe(err);
  }

  close(): void {
    this.httpsAgent.destroy();
    this.httpAgent.destroy();
  }
}

const flows = new AsyncLocalStorage<Flow>();

// acme-client sends through one shared axios instance; each request takes its order's agents
// and signal from the order it runs in.
acme.axios.interceptors.request.use((config) => {
  const flow = flows.getStore();
  if (flow) {
    config.signal ??= flow.signal;
    config.httpsAgent ??= flow.httpsAgent;
    config.httpAgent ??= flow.httpAgent;
  }
  return config;
});
// acme-client retries a failed request itself, after sleeps of 5 s and more on timers nothing
// cancels (a stopping process would wait on them); the whole order is retried with backoff instead.
(acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings.retryMaxAttempts = 0;
