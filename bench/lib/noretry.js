// A keep-alive HTTP client that never retries (plain-JS twin of test/helpers/load.ts): each of
// `connections` lanes sends one request at a time on its own pooled connection and counts every
// request that does not come back 200 — a reset, a refused connection, a 5xx. autocannon
// reconnects and resends silently, so it cannot show these.
// It also notes when each backend pid answered first, which is how swap latency is measured.
import http from 'node:http';
import { performance } from 'node:perf_hooks';

export class NoRetryLoad {
  constructor(url, connections = 20, path = '/') {
    this.url = url;
    this.path = path;
    this.ok = 0;
    this.failed = 0;
    /** Distinct error strings with counts, exactly as the socket/parser reported them. */
    this.errors = new Map();
    this.byGen = new Map();
    /** pid -> performance.now() of its first response. */
    this.firstSeen = new Map();
    this.running = true;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: connections });
    this.lanes = Array.from({ length: connections }, () => this.lane());
  }

  async lane() {
    while (this.running) await this.once();
  }

  once() {
    return new Promise((resolve) => {
      const req = http.get(`${this.url}${this.path}`, { agent: this.agent }, (res) => {
        const parts = [];
        res.on('data', (c) => parts.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) this.fail(`status ${res.statusCode}`);
          else this.record(Buffer.concat(parts));
          resolve();
        });
        res.on('error', (err) => { this.fail(err.message); resolve(); });
      });
      req.on('error', (err) => { this.fail(`${err.code ?? ''} ${err.message}`.trim()); resolve(); });
    });
  }

  record(body) {
    this.ok++;
    try {
      const { pid, gen } = JSON.parse(body.toString());
      if (!this.firstSeen.has(pid)) this.firstSeen.set(pid, performance.now());
      this.byGen.set(gen, (this.byGen.get(gen) ?? 0) + 1);
    } catch { /* not a fixture body */ }
  }

  fail(reason) {
    this.failed++;
    this.errors.set(reason, (this.errors.get(reason) ?? 0) + 1);
  }

  async stop() {
    this.running = false;
    await Promise.all(this.lanes);
    this.agent.destroy();
    return {
      requests: this.ok + this.failed,
      ok: this.ok,
      failed: this.failed,
      errors: Object.fromEntries(this.errors),
      byGen: Object.fromEntries([...this.byGen].sort((a, b) => a[0] - b[0])),
    };
  }
}
