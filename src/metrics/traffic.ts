// Per-worker request counters, kept as plain numbers so the hot path pays a few array
// increments, not a metrics library's label hashing. The master turns them into Prometheus
// metrics at scrape time, in prom-client's JSON shape so its aggregation sums the workers.
import type { MetricObjectWithValues, MetricValue, MetricValueWithName } from 'prom-client';

/** Seconds; Prometheus' default buckets, one finer step at the low end for a fast proxy. */
export const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

export type Metrics = MetricObjectWithValues<MetricValue<string>>[];

export class Traffic {
  /** gen -> counts per status class. */
  private byGen = new Map<number, number[]>();
  /** Answers the proxy made itself (502/503/504, 400/408/431), by status. */
  private proxyMade = new Map<number, number>();
  private buckets = new Array<number>(BUCKETS.length + 1).fill(0);
  private sum = 0;
  private count = 0;

  /** A response that reached the client: its status and how long it took from the request's start. */
  record(gen: number, status: number, startNs: bigint): void {
    let counts = this.byGen.get(gen);
    if (!counts) this.byGen.set(gen, (counts = [0, 0, 0, 0, 0]));
    counts[Math.min(4, Math.max(0, Math.floor(status / 100) - 1))]!++;
    const s = Number(process.hrtime.bigint() - startNs) / 1e9;
    let i = 0;
    while (i < BUCKETS.length && s > BUCKETS[i]!) i++;
    this.buckets[i]!++;
    this.sum += s;
    this.count++;
  }

  /** Responses recorded so far. */
  get answered(): number {
    return this.count;
  }

  /** An answer the proxy made itself; gen 0 when no generation was chosen. */
  proxyAnswer(gen: number, status: number, startNs: bigint): void {
    this.proxyMade.set(status, (this.proxyMade.get(status) ?? 0) + 1);
    this.record(gen, status, startNs);
  }

  /** Totals since this worker started, as prom-client's getMetricsAsJSON() would give them. */
  toJSON(): Metrics {
    const requests: MetricValue<string>[] = [];
    for (const [gen, counts] of this.byGen) {
      counts.forEach((value, i) => { if (value) requests.push({ value, labels: { gen: String(gen), class: CLASSES[i]! } }); });
    }
    const made = [...this.proxyMade].map(([status, value]) => ({ value, labels: { status: String(status) } }));
    const hist: MetricValueWithName<string>[] = [];
    let cumulative = 0;
    BUCKETS.forEach((le, i) => {
      cumulative += this.buckets[i]!;
      hist.push({ value: cumulative, labels: { le }, metricName: 'hotproxy_request_duration_seconds_bucket' });
    });
    hist.push({ value: this.count, labels: { le: '+Inf' }, metricName: 'hotproxy_request_duration_seconds_bucket' });
    hist.push({ value: this.sum, labels: {}, metricName: 'hotproxy_request_duration_seconds_sum' });
    hist.push({ value: this.count, labels: {}, metricName: 'hotproxy_request_duration_seconds_count' });
    return [
      metric('hotproxy_requests_total', 'Responses sent to clients, by generation and status class.', 'counter', requests),
      metric('hotproxy_proxy_responses_total', 'Responses hotproxy made itself (502/503/504 for backend trouble, 4xx for bad requests), by status.', 'counter', made),
      metric('hotproxy_request_duration_seconds', 'Time from a request\'s start to its response\'s end, through the proxy.', 'histogram', hist),
    ];
  }
}

export function metric(name: string, help: string, type: string, values: MetricValue<string>[]): Metrics[number] {
  return { name, help, type, values, aggregator: 'sum' } as unknown as Metrics[number];
}

/** The one per proxy worker process. */
export const traffic = new Traffic();
