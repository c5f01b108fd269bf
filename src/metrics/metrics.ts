// The master's Prometheus metrics: its own (deploys, upgrades, restarts, generations) plus
// every proxy worker's traffic, summed with prom-client's cluster aggregation at scrape time.
// Totals of workers that an upgrade replaced are kept, so counters never go backwards.
import type { RestartReason } from '../master/generation.js';
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { WorkerStats } from '../ipc.js';
import type { Metrics } from './traffic.js';

export interface MetricsSource {
  /** `final`: the worker has since sent its last totals, which retire() got. */
  workerStats(): Promise<Array<{ stats?: WorkerStats; final: boolean }>>;
  activeGeneration(): number | undefined;
}

export class MasterMetrics {
  private readonly registry = new Registry();
  private retired: Metrics[] = [];
  /** Folding in retired workers, one at a time (two retire together in every upgrade). */
  private folding: Promise<void> = Promise.resolve();
  private readonly deploys = new Counter({ name: 'hotproxy_deploys_total', help: 'Deploys (HUP, hotproxy reload) by outcome.', labelNames: ['outcome'], registers: [this.registry] });
  private readonly deploySeconds = new Histogram({
    name: 'hotproxy_deploy_duration_seconds', help: 'Successful deploys: start of green to the switch.',
    buckets: [0.25, 0.5, 1, 2, 5, 10, 30, 60], registers: [this.registry],
  });
  private readonly upgrades = new Counter({ name: 'hotproxy_upgrades_total', help: 'Proxy upgrades (USR2, hotproxy upgrade) by outcome.', labelNames: ['outcome'], registers: [this.registry] });
  private readonly restarts = new Counter({
    name: 'hotproxy_backend_restarts_total', help: 'Restart attempts of backend instances, by reason: exit (it exited unexpectedly) or unhealthy (it stayed out of rotation).',
    labelNames: ['reason'], registers: [this.registry],
  });
  private readonly activeGen = new Gauge({ name: 'hotproxy_active_generation', help: 'The generation new requests go to.', registers: [this.registry] });
  private readonly inflight = new Gauge({ name: 'hotproxy_inflight', help: 'Requests (http) or connections (tcp, WebSocket) in flight, by generation.', labelNames: ['gen'], registers: [this.registry] });
  private readonly connections = new Gauge({ name: 'hotproxy_open_connections', help: 'Open client connections on the proxy workers.', registers: [this.registry] });

  constructor(private readonly source: MetricsSource) {
    collectDefaultMetrics({ register: this.registry, prefix: 'hotproxy_master_' });
    for (const outcome of ['ok', 'failed']) { this.deploys.inc({ outcome }, 0); this.upgrades.inc({ outcome }, 0); }
    for (const reason of ['exit', 'unhealthy'] satisfies RestartReason[]) this.restarts.inc({ reason }, 0);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  deployed(ok: boolean, ms?: number): void {
    this.deploys.inc({ outcome: ok ? 'ok' : 'failed' });
    if (ok && ms !== undefined) this.deploySeconds.observe(ms / 1000);
  }

  upgraded(ok: boolean): void {
    this.upgrades.inc({ outcome: ok ? 'ok' : 'failed' });
  }

  restarted(reason: RestartReason): void {
    this.restarts.inc({ reason });
  }

  /** A worker that retired: its totals stay in the sums from now on. */
  retire(traffic: Metrics): void {
    // Folded into one entry so a long-lived master keeps one, not one per upgrade.
    this.folding = this.folding.then(async () => {
      this.retired = [(await AggregatorRegistry.aggregate([...this.retired, traffic]).getMetricsAsJSON()) as unknown as Metrics];
    });
  }

  async render(): Promise<string> {
    const all = await this.source.workerStats();
    // A worker that retired meanwhile is counted once: from its final totals.
    await this.folding;
    const workers = all.filter((w) => !w.final).map((w) => w.stats).filter((s) => s !== undefined);
    const active = this.source.activeGeneration();
    if (active === undefined) this.activeGen.reset(); else this.activeGen.set(active);
    this.inflight.reset();
    this.connections.set(0);
    for (const w of workers) {
      for (const [gen, n] of Object.entries(w.inflight)) this.inflight.inc({ gen }, n);
      this.connections.inc(w.connections);
    }
    const own = (await this.registry.getMetricsAsJSON()) as unknown as Metrics;
    return AggregatorRegistry.aggregate([own, ...this.retired, ...workers.map((w) => w.traffic)]).metrics();
  }
}
