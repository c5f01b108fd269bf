import { describe, expect, it } from 'vitest';
import { Inflight } from '../../src/proxy/inflight.js';

// Lets every pending promise callback run, so "not resolved yet" means it.
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function tracked(p: Promise<void>): { done: boolean } {
  const s = { done: false };
  void p.then(() => { s.done = true; });
  return s;
}

describe('Inflight', () => {
  it('counts what each generation has open, and the total', () => {
    const f = new Inflight();
    f.inc(1); f.inc(1); f.inc(2);
    expect(f.byGen()).toEqual({ 1: 2, 2: 1 });
    expect(f.total()).toBe(3);
    f.dec(1);
    expect(f.byGen()).toEqual({ 1: 1, 2: 1 });
    expect(f.total()).toBe(2);
  });

  it('a generation with nothing open is not listed', () => {
    const f = new Inflight();
    f.inc(3);
    f.dec(3);
    expect(f.byGen()).toEqual({});
    expect(f.total()).toBe(0);
  });

  it('one close too many does not leave a negative count that would hide the next request', () => {
    const f = new Inflight();
    f.inc(1);
    f.dec(1);
    f.dec(1);
    expect(f.byGen()).toEqual({});
    f.inc(1);
    expect(f.byGen()).toEqual({ 1: 1 });
  });

  it('a drain of a generation with nothing open is over at once', async () => {
    const f = new Inflight();
    f.inc(2);
    await f.whenIdle(1);
  });

  it('a drain ends the moment the generation\'s last request ends, not before', async () => {
    const f = new Inflight();
    f.inc(1); f.inc(1);
    const a = tracked(f.whenIdle(1));
    const b = tracked(f.whenIdle(1));
    f.dec(1);
    await flush();
    expect([a.done, b.done]).toEqual([false, false]);
    f.dec(1);
    await flush();
    expect([a.done, b.done]).toEqual([true, true]);
  });

  it('another generation\'s traffic neither ends nor holds up a drain', async () => {
    const f = new Inflight();
    f.inc(1); f.inc(2);
    const one = tracked(f.whenIdle(1));
    f.dec(2);
    f.inc(2);
    await flush();
    expect(one.done).toBe(false);
    f.dec(1);
    await flush();
    expect(one.done).toBe(true);
  });

  it('a drain asked for after the generation got busy again waits for the new traffic', async () => {
    const f = new Inflight();
    f.inc(1);
    f.dec(1);
    f.inc(1);
    const drain = tracked(f.whenIdle(1));
    await flush();
    expect(drain.done).toBe(false);
    f.dec(1);
    await flush();
    expect(drain.done).toBe(true);
  });

  it('whenAllIdle waits for every generation, including one that opened during the wait', async () => {
    const f = new Inflight();
    f.inc(1); f.inc(2);
    const all = tracked(f.whenAllIdle());
    f.dec(1);
    f.inc(3);
    await flush();
    expect(all.done).toBe(false);
    f.dec(2);
    await flush();
    expect(all.done).toBe(false);
    f.dec(3);
    await flush();
    expect(all.done).toBe(true);
  });

  it('whenAllIdle with nothing open is over at once', async () => {
    await new Inflight().whenAllIdle();
  });
});
