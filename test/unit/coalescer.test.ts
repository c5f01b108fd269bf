import { describe, expect, it } from 'vitest';
import { Coalescer } from '../../src/coalescer.js';

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A task whose runs the test ends one by one; it records how many ran and at most at once. */
function controlled() {
  const runs: { resolve(v: number): void; reject(e: Error): void }[] = [];
  let active = 0;
  let maxActive = 0;
  const task = (): Promise<number> => {
    active++;
    maxActive = Math.max(maxActive, active);
    const n = runs.length + 1;
    return new Promise<number>((resolve, reject) => {
      runs.push({ resolve: () => resolve(n), reject });
    }).finally(() => { active--; });
  };
  return { task, runs, get maxActive() { return maxActive; } };
}

describe('Coalescer (HUP coalescing)', () => {
  it('a request while idle runs the task at once and gets its result', async () => {
    const c = controlled();
    const co = new Coalescer(c.task);
    const p = co.request();
    expect(c.runs).toHaveLength(1);
    expect(co.busy).toBe(true);
    c.runs[0]!.resolve(0);
    expect(await p).toBe(1);
    expect(co.busy).toBe(false);
  });

  it('any number of requests during a run make exactly one more run, which they all share', async () => {
    const c = controlled();
    const co = new Coalescer(c.task);
    const first = co.request();
    const later = [co.request(), co.request(), co.request()];
    expect(later[1]).toBe(later[0]);
    expect(later[2]).toBe(later[0]);
    // The queued run waits for the current one to end.
    await flush();
    expect(c.runs).toHaveLength(1);
    c.runs[0]!.resolve(0);
    expect(await first).toBe(1);
    await flush();
    expect(c.runs).toHaveLength(2);
    c.runs[1]!.resolve(0);
    expect(await Promise.all(later)).toEqual([2, 2, 2]);
    await flush();
    expect(c.runs).toHaveLength(2);
    expect(c.maxActive).toBe(1);
  });

  it('a request during the queued run, once it started, queues a run after it', async () => {
    const c = controlled();
    const co = new Coalescer(c.task);
    void co.request();
    const second = co.request();
    c.runs[0]!.resolve(0);
    await flush();
    expect(c.runs).toHaveLength(2);
    const third = co.request();
    expect(third).not.toBe(second);
    c.runs[1]!.resolve(0);
    expect(await second).toBe(2);
    await flush();
    c.runs[2]!.resolve(0);
    expect(await third).toBe(3);
    expect(c.maxActive).toBe(1);
  });

  it('a failed run fails only its own requests, and the queued run still happens', async () => {
    const c = controlled();
    const co = new Coalescer(c.task);
    const first = co.request();
    const second = co.request();
    c.runs[0]!.reject(new Error('deploy failed'));
    await expect(first).rejects.toThrow('deploy failed');
    await flush();
    expect(c.runs).toHaveLength(2);
    c.runs[1]!.resolve(0);
    expect(await second).toBe(2);
  });

  it('a task that throws at once is a failed run, and the next request runs again', async () => {
    let calls = 0;
    const co = new Coalescer(async () => { calls++; if (calls === 1) throw new Error('boom'); return calls; });
    await expect(co.request()).rejects.toThrow('boom');
    expect(co.busy).toBe(false);
    expect(await co.request()).toBe(2);
  });

  it('settled waits for the current and the queued run, and does not throw for failed ones', async () => {
    const c = controlled();
    const co = new Coalescer(c.task);
    void co.request().catch(() => {});
    void co.request();
    let settled = false;
    void co.settled().then(() => { settled = true; });
    c.runs[0]!.reject(new Error('x'));
    await flush();
    expect(settled).toBe(false);
    c.runs[1]!.resolve(0);
    await flush();
    expect(settled).toBe(true);
    expect(co.busy).toBe(false);
  });

  it('settled while idle is over at once', async () => {
    await new Coalescer(async () => 1).settled();
  });
});
