import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Backoff } from '../../src/backoff.js';

beforeEach(() => { vi.useFakeTimers(); });
afterEach(() => { vi.useRealTimers(); });

const take = (b: Backoff, n: number): number[] => Array.from({ length: n }, () => b.take());

describe('Backoff (restart delays)', () => {
  it('starts at 100 ms and doubles up to 10 s, where it stays', () => {
    expect(take(new Backoff(), 10)).toEqual([100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]);
  });

  it('after 10 s up, the next failure starts again at 100 ms', () => {
    const b = new Backoff();
    take(b, 5);
    b.up();
    vi.advanceTimersByTime(10_000);
    expect(take(b, 2)).toEqual([100, 200]);
  });

  it('up for less than 10 s does not forget past failures', () => {
    const b = new Backoff();
    take(b, 3);
    b.up();
    vi.advanceTimersByTime(9_999);
    expect(b.take()).toBe(800);
  });

  it('a failure cancels the pending reset, so a later quiet spell does not reset it either', () => {
    const b = new Backoff();
    take(b, 3);
    b.up();
    vi.advanceTimersByTime(5_000);
    expect(b.take()).toBe(800);
    vi.advanceTimersByTime(60_000);
    expect(b.take()).toBe(1600);
  });

  it('each up() starts the 10 s anew', () => {
    const b = new Backoff();
    take(b, 3);
    b.up();
    vi.advanceTimersByTime(6_000);
    b.up();
    vi.advanceTimersByTime(6_000);
    expect(b.take()).toBe(800);
  });

  it('cancel drops a pending reset', () => {
    const b = new Backoff();
    take(b, 3);
    b.up();
    b.cancel();
    vi.advanceTimersByTime(20_000);
    expect(b.take()).toBe(800);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('takes other bounds and reset time', () => {
    const b = new Backoff(10, 50, 1_000);
    expect(take(b, 4)).toEqual([10, 20, 40, 50]);
    expect(b.max).toBe(50);
    b.up();
    vi.advanceTimersByTime(1_000);
    expect(b.take()).toBe(10);
  });
});
