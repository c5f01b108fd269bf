import { AggregatorRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BUCKETS, Traffic, type Metrics } from '../../src/metrics/traffic.js';

/** A request start `seconds` ago, on the clock Traffic measures with. */
const ago = (seconds: number): bigint => process.hrtime.bigint() - BigInt(Math.round(seconds * 1e9));

const byName = (m: Metrics, name: string) => m.find((x) => x.name === name)!;
const requests = (t: Traffic) => byName(t.toJSON(), 'hotproxy_requests_total').values;
const made = (t: Traffic) => byName(t.toJSON(), 'hotproxy_proxy_responses_total').values;
const hist = (t: Traffic) => byName(t.toJSON(), 'hotproxy_request_duration_seconds').values as { value: number; labels: Record<string, unknown>; metricName: string }[];
const bucket = (t: Traffic, le: number | string): number => hist(t).find((v) => v.labels.le === le)!.value;

describe('Traffic (a worker\'s counters)', () => {
  it('starts with no requests, and a histogram of zeros', () => {
    const t = new Traffic();
    expect(requests(t)).toEqual([]);
    expect(made(t)).toEqual([]);
    expect(hist(t).every((v) => v.value === 0)).toBe(true);
    expect(hist(t)).toHaveLength(BUCKETS.length + 3);
  });

  it('counts responses by generation and status class, listing only classes seen', () => {
    const t = new Traffic();
    for (const [gen, status] of [[1, 200], [1, 204], [1, 404], [2, 200], [2, 503], [2, 101]] as const) t.record(gen, status, ago(0));
    expect(requests(t)).toEqual([
      { value: 2, labels: { gen: '1', class: '2xx' } },
      { value: 1, labels: { gen: '1', class: '4xx' } },
      { value: 1, labels: { gen: '2', class: '1xx' } },
      { value: 1, labels: { gen: '2', class: '2xx' } },
      { value: 1, labels: { gen: '2', class: '5xx' } },
    ]);
  });

  it('a status outside 100-599 is counted in the nearest class, never lost', () => {
    const t = new Traffic();
    t.record(1, 99, ago(0));
    t.record(1, 600, ago(0));
    t.record(1, 0, ago(0));
    expect(requests(t)).toEqual([{ value: 2, labels: { gen: '1', class: '1xx' } }, { value: 1, labels: { gen: '1', class: '5xx' } }]);
  });

  it('an answer the proxy made counts by its status, and among all responses', () => {
    const t = new Traffic();
    t.proxyAnswer(0, 503, ago(0));
    t.proxyAnswer(0, 503, ago(0));
    t.proxyAnswer(3, 502, ago(0));
    t.record(3, 502, ago(0));
    expect(made(t)).toEqual([{ value: 2, labels: { status: '503' } }, { value: 1, labels: { status: '502' } }]);
    expect(requests(t)).toEqual([{ value: 2, labels: { gen: '0', class: '5xx' } }, { value: 2, labels: { gen: '3', class: '5xx' } }]);
  });

  it('durations fill a cumulative histogram, with +Inf, sum and count', () => {
    const t = new Traffic();
    t.record(1, 200, ago(0.003));
    t.record(1, 200, ago(0.3));
    t.record(1, 200, ago(20));
    expect(bucket(t, 0.0025)).toBe(0);
    expect(bucket(t, 0.005)).toBe(1);
    expect(bucket(t, 0.25)).toBe(1);
    expect(bucket(t, 0.5)).toBe(2);
    expect(bucket(t, 10)).toBe(2);
    expect(bucket(t, '+Inf')).toBe(3);
    const sum = hist(t).find((v) => v.metricName === 'hotproxy_request_duration_seconds_sum')!.value;
    expect(sum).toBeGreaterThanOrEqual(20.303);
    expect(sum).toBeLessThan(20.5);
    expect(hist(t).find((v) => v.metricName === 'hotproxy_request_duration_seconds_count')!.value).toBe(3);
  });

  it('buckets never decrease and end at the count', () => {
    const t = new Traffic();
    for (const s of [0.0001, 0.002, 0.04, 0.04, 0.7, 3, 7, 12]) t.record(1, 200, ago(s));
    const values = hist(t).filter((v) => v.metricName.endsWith('_bucket')).map((v) => v.value);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    expect(values.at(-1)).toBe(8);
  });

  it('is in the shape prom-client sums across workers: each metric summed, samples added label by label', async () => {
    const a = new Traffic();
    const b = new Traffic();
    a.record(1, 200, ago(0.001));
    b.record(1, 200, ago(0.001));
    b.record(2, 500, ago(0.001));
    b.proxyAnswer(0, 504, ago(0.001));
    for (const m of a.toJSON()) expect((m as { aggregator?: string }).aggregator).toBe('sum');
    const text = await AggregatorRegistry.aggregate([a.toJSON(), b.toJSON()]).metrics();
    expect(text).toContain('# TYPE hotproxy_requests_total counter');
    expect(text).toContain('hotproxy_requests_total{gen="1",class="2xx"} 2');
    expect(text).toContain('hotproxy_requests_total{gen="2",class="5xx"} 1');
    expect(text).toContain('hotproxy_proxy_responses_total{status="504"} 1');
    expect(text).toContain('# TYPE hotproxy_request_duration_seconds histogram');
    expect(text).toContain('hotproxy_request_duration_seconds_bucket{le="+Inf"} 4');
    expect(text).toContain('hotproxy_request_duration_seconds_count 4');
  });
});
