// A keep-alive HTTP client that never retries: each of `connections` lanes sends one request
// at a time on its own pooled connection and counts every request that does not come back
// 200 — a reset, a refused connection, a 5xx. (autocannon reconnects and resends silently,
// so it cannot show these.) Bodies of the test fixture ({ pid, gen }) are counted per backend
// and generation, and the moment each pid first answered is noted: that is how the bench
// measures swap latency.
import http from 'node:http';
import { performance } from 'node:perf_hooks';

export class Load {
  #running = true;
  #lanes;
  #agent;
  #url;
  #timeoutMs;

  /** `timeoutMs`: a client that gives up, as real ones do: a request slower than this failed. */
  constructor(url, connections = 20, path = '/', { timeoutMs = 0 } = {}) {
    this.#url = `${url}${path}`;
    this.#timeoutMs = timeoutMs;
    this.result = { ok: 0, failed: 0, failedOnReused: 0, errors: [], errorCounts: new Map(), byPid: new Map(), byGen: new Map(), maxMs: 0 };
    /** pid -> performance.now() of its first answer. */
    this.firstSeen = new Map();
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: connections });
    this.#lanes = Array.from({ length: connections }, () => this.#lane());
  }

  async #lane() {
    while (this.#running) await this.#once();
  }

  #once() {
    const t0 = performance.now();
    return new Promise((resolve) => {
      let timer;
      let settled = false;
      // One outcome per request, whichever of the request's and the response's events comes first.
      const settle = (outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        outcome();
        this.result.maxMs = Math.max(this.result.maxMs, performance.now() - t0);
        resolve();
      };
      const req = http.get(this.#url, { agent: this.#agent }, (res) => {
        const parts = [];
        res.on('data', (c) => parts.push(c));
        res.on('end', () => settle(() => {
          if (res.statusCode !== 200) this.#fail(`status ${res.statusCode}`, req.reusedSocket);
          else this.#record(Buffer.concat(parts));
        }));
        res.on('error', (err) => settle(() => this.#fail(err.message, req.reusedSocket)));
        // A body cut short on a Node that reports it with neither 'error' nor 'end'.
        res.on('close', () => settle(() => this.#fail('response closed before its end', req.reusedSocket)));
      });
      req.on('error', (err) => settle(() => this.#fail(`${err.code ?? ''} ${err.message}`.trim(), req.reusedSocket)));
      if (this.#timeoutMs > 0) timer = setTimeout(() => req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)), this.#timeoutMs);
    });
  }

  #record(body) {
    const r = this.result;
    r.ok++;
    try {
      const { pid, gen } = JSON.parse(body.toString());
      if (!r.byPid.has(pid)) this.firstSeen.set(pid, performance.now());
      r.byPid.set(pid, (r.byPid.get(pid) ?? 0) + 1);
      r.byGen.set(gen, (r.byGen.get(gen) ?? 0) + 1);
    } catch { /* not a fixture body */ }
  }

  #fail(reason, reused) {
    countFailure(this.result, reason, reused);
  }

  /** Responses served so far by a backend pid. */
  servedBy(pid) {
    return this.result.byPid.get(pid) ?? 0;
  }

  async stop() {
    this.#running = false;
    await Promise.all(this.#lanes);
    this.#agent.destroy();
    return this.result;
  }
}

/**
 * performance.now() of the first answer any of `pids` gave, by a client's `firstSeen` (pid ->
 * when it first answered), waiting up to `timeoutMs`; undefined if none did.
 */
/** One failed request in a no-retry client's result: counted, and its reason kept (the first 20). */
export function countFailure(r, reason, reused) {
  const what = `${reason}${reused ? ' (reused connection)' : ''}`;
  r.failed++;
  if (reused) r.failedOnReused++;
  if (r.errors.length < 20) r.errors.push(what);
  r.errorCounts.set(what, (r.errorCounts.get(what) ?? 0) + 1);
}

export async function firstAnswer(firstSeen, pids, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const times = pids.map((p) => firstSeen.get(p)).filter((t) => t !== undefined);
    if (times.length) return Math.min(...times);
    if (Date.now() > deadline) return undefined;
    await new Promise((r) => setTimeout(r, 2));
  }
}
