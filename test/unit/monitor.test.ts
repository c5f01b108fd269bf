import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Monitor, type MonitorOptions } from '../../src/health/monitor.js';
import type { ProbeResult } from '../../src/health/probe.js';

const OPTS: MonitorOptions = { intervalMs: 1_000, timeoutMs: 500, fall: 3, rise: 2, restartAfterMs: 5_000 };

/** An instance whose checks answer as `healthy()` says, each after `ms`. */
function instance(healthy: () => boolean, ms = 10) {
  let probes = 0;
  return {
    id: '1.0.0', pid: 42,
    get probes() { return probes; },
    probe: (): Promise<ProbeResult> => {
      probes++;
      return new Promise((resolve) => setTimeout(() => resolve(healthy() ? { ok: true } : { ok: false, reason: 'GET / answered 503' }), ms));
    },
  };
}

function monitor(opts = OPTS) {
  const events: string[] = [];
  const m = new Monitor(opts, {
    changed: (i) => events.push(`changed ${i} ${m.inRotation(i) ? 'in' : 'out'}`),
    replace: (i, why) => events.push(`replace ${i}: ${why}`),
  }, pino({ level: 'silent' }));
  return { m, events };
}

beforeEach(() => { vi.useFakeTimers(); });
afterEach(() => { vi.useRealTimers(); });

describe('Monitor', () => {
  it('a healthy instance is checked every interval and nothing happens', async () => {
    const { m, events } = monitor();
    const inst = instance(() => true);
    m.watch(0, inst);
    await vi.advanceTimersByTimeAsync(10_500);
    expect(inst.probes).toBe(10);
    expect(events).toEqual([]);
    m.stop();
  });

  // Rechecks after a failure come soon, so fall checks take about fall × timeout, not intervals.
  it('fall consecutive failures take it out of rotation quickly, and it is replaced after --unhealthy-restart', async () => {
    const { m, events } = monitor();
    let ok = true;
    m.watch(0, instance(() => ok, 500));
    await vi.advanceTimersByTimeAsync(1_600);
    ok = false;
    // Next check at 2.5 s fails at 3.0; rechecks 200 ms apart fail at 3.7 and 4.4.
    await vi.advanceTimersByTimeAsync(2_900);
    expect(events).toEqual(['changed 0 out']);
    expect(m.describe(0)).toMatchObject({ health: 'unhealthy', reason: 'GET / answered 503' });
    await vi.advanceTimersByTimeAsync(4_800);
    expect(events).toEqual(['changed 0 out']);
    await vi.advanceTimersByTimeAsync(300);
    expect(events).toEqual(['changed 0 out', 'replace 0: GET / answered 503']);
    m.stop();
  });

  it('a flapping instance leaves and rejoins rotation but is never handed back for replacement', async () => {
    const { m, events } = monitor({ ...OPTS, fall: 2, rise: 1, restartAfterMs: 4_000 });
    // Bad for 2.5 s, good for 2.5 s, by turns: each time out for at most 2.5 s plus one interval
    // (the next check while out), less than --unhealthy-restart.
    m.watch(0, instance(() => Math.floor(Date.now() / 2_500) % 2 === 1));
    await vi.advanceTimersByTimeAsync(30_000);
    expect(events.filter((e) => e === 'changed 0 out').length).toBeGreaterThanOrEqual(5);
    expect(events.filter((e) => e === 'changed 0 in').length).toBeGreaterThanOrEqual(5);
    expect(events.some((e) => e.startsWith('replace'))).toBe(false);
    m.stop();
  });

  it("a worker's report counts as one failed check and starts the next check at once", async () => {
    const { m, events } = monitor();
    const inst = instance(() => false, 500);
    m.watch(0, inst);
    m.report('1.0.0', 'no answer within --backend-timeout');
    // Reports while a check runs do not count again: one per check.
    m.report('1.0.0', 'no answer within --backend-timeout');
    m.report('1.0.0', 'no answer within --backend-timeout');
    expect(inst.probes).toBe(1);
    await vi.advanceTimersByTimeAsync(500);
    expect(events).toEqual([]);
    await vi.advanceTimersByTimeAsync(700);
    expect(events).toEqual(['changed 0 out']);
    m.stop();
  });

  it('a report of an instance that then passes its check routes again (workers clear their marks)', async () => {
    const { m, events } = monitor();
    m.watch(0, instance(() => true));
    m.report('1.0.0', 'no answer within --backend-timeout');
    await vi.advanceTimersByTimeAsync(20);
    expect(events).toEqual(['changed 0 in']);
    expect(m.describe(0)).toEqual({ health: 'healthy' });
    m.stop();
  });

  it('a report of an instance it does not watch is ignored', async () => {
    const { m, events } = monitor();
    m.watch(0, instance(() => true));
    m.report('9.9.9', 'connection refused');
    await vi.advanceTimersByTimeAsync(100);
    expect(events).toEqual([]);
    m.stop();
  });
});
