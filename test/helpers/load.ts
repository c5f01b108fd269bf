// A keep-alive HTTP client that never retries: each of `connections` lanes sends one request
// at a time on its own pooled connection and counts every request that does not come back
// 200 — a reset, a refused connection, a 5xx. (autocannon reconnects and resends silently,
// so it cannot show these.)
import http from 'node:http';

export interface LoadResult {
  ok: number;
  failed: number;
  /** Failures of requests sent on a connection that had already served one (keep-alive reuse). */
  failedOnReused: number;
  errors: string[];
  /** Responses per backend pid. */
  byPid: Map<number, number>;
  byGen: Map<number, number>;
}

export class Load {
  readonly result: LoadResult = { ok: 0, failed: 0, failedOnReused: 0, errors: [], byPid: new Map(), byGen: new Map() };
  private running = true;
  private lanes: Promise<void>[];
  private agent: http.Agent;

  constructor(private url: string, connections = 20, private path = '/') {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: connections });
    this.lanes = Array.from({ length: connections }, () => this.lane());
  }

  private async lane(): Promise<void> {
    while (this.running) await this.once();
  }

  private once(): Promise<void> {
    return new Promise((resolve) => {
      const req = http.get(`${this.url}${this.path}`, { agent: this.agent }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) {
            this.fail(`status ${res.statusCode}`, req.reusedSocket);
          } else {
            this.result.ok++;
            try {
              const { pid, gen } = JSON.parse(Buffer.concat(parts).toString()) as { pid: number; gen: number };
              this.result.byPid.set(pid, (this.result.byPid.get(pid) ?? 0) + 1);
              this.result.byGen.set(gen, (this.result.byGen.get(gen) ?? 0) + 1);
            } catch { /* not a fixture body */ }
          }
          resolve();
        });
        res.on('error', (err) => { this.fail(err.message, req.reusedSocket); resolve(); });
      });
      req.on('error', (err) => { this.fail(`${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`, req.reusedSocket); resolve(); });
    });
  }

  private fail(reason: string, reused: boolean): void {
    this.result.failed++;
    if (reused) this.result.failedOnReused++;
    if (this.result.errors.length < 20) this.result.errors.push(`${reason}${reused ? ' (reused connection)' : ''}`);
  }

  /** Responses served so far by a backend pid. */
  servedBy(pid: number): number {
    return this.result.byPid.get(pid) ?? 0;
  }

  async stop(): Promise<LoadResult> {
    this.running = false;
    await Promise.all(this.lanes);
    this.agent.destroy();
    return this.result;
  }
}
