import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { NoRouteError, PauseExpiredError, StoppingError } from '../../src/errors.js';
import { statusFor } from '../../src/proxy/failure.js';
import type { Route, Target } from '../../src/ipc.js';
import { Router } from '../../src/proxy/router.js';

const target = (gen: number, i: number): Target => ({ id: `${gen}.${i}`, gen, address: { path: `/run/g${gen}-${i}.sock` } });
const route = (gen: number | null, n: number, seq = 1): Route => ({ seq, gen, targets: gen === null ? [] : Array.from({ length: n }, (_, i) => target(gen, i)) });
const ids = (ts: (Target | undefined)[]): (string | undefined)[] => ts.map((t) => t?.id);
const picks = (r: Router, n: number): (string | undefined)[] => ids(Array.from({ length: n }, () => r.pick()));

beforeEach(() => { vi.useFakeTimers(); });
afterEach(() => { vi.useRealTimers(); });

describe('Router.pick', () => {
  it('has nothing to give before the first route, or on a route without targets', () => {
    const r = new Router();
    expect(r.pick()).toBeUndefined();
    r.set(route(null, 0));
    expect(r.pick()).toBeUndefined();
  });

  it('goes round robin over the targets', () => {
    const r = new Router();
    r.set(route(1, 3));
    expect(picks(r, 7)).toEqual(['1.0', '1.1', '1.2', '1.0', '1.1', '1.2', '1.0']);
  });

  it('a single target is picked every time', () => {
    const r = new Router();
    r.set(route(1, 1));
    expect(picks(r, 3)).toEqual(['1.0', '1.0', '1.0']);
  });

  it('once a new route is set, no target of the old generation is handed out', () => {
    const r = new Router();
    r.set(route(1, 3));
    r.pick();
    r.set(route(2, 2));
    const after = picks(r, 10);
    expect(after.every((id) => id!.startsWith('2.'))).toBe(true);
    // Both new targets get their turn straight away, wherever the old rotation was.
    expect(new Set(after.slice(0, 2))).toEqual(new Set(['2.0', '2.1']));
  });

  it('a route to nothing stops handing out targets', () => {
    const r = new Router();
    r.set(route(1, 2));
    r.set(route(null, 0, 2));
    expect(r.pick()).toBeUndefined();
  });
});

describe('Router.markDown', () => {
  it('a target that refused is skipped, and the others share the traffic', () => {
    const r = new Router();
    const rt = route(1, 3);
    r.set(rt);
    r.markDown(rt.targets[1]!, 'refused');
    expect(picks(r, 4)).toEqual(['1.0', '1.2', '1.0', '1.2']);
  });

  it('with every target down there is nothing to pick until the next route', () => {
    const r = new Router();
    const rt = route(1, 2);
    r.set(rt);
    for (const t of rt.targets) r.markDown(t, 'refused');
    expect(r.pick()).toBeUndefined();
    // The master's next route (even the same one again) is a fresh start.
    r.set(route(1, 2, 2));
    expect(picks(r, 2).sort()).toEqual(['1.0', '1.1']);
  });

  it('a refusal seen on a target of a replaced route leaves the current targets up', () => {
    const r = new Router();
    const old = route(1, 2);
    r.set(old);
    // The same ids again, as a later route message would carry them.
    r.set(route(1, 2, 2));
    r.markDown(old.targets[0]!, 'refused');
    expect(picks(r, 4).sort()).toEqual(['1.0', '1.0', '1.1', '1.1']);
  });
});

describe('Router.markDown: what the master hears, and for how long', () => {
  it('the first mark of an instance is reported once, with why', () => {
    const r = new Router();
    const heard: string[] = [];
    r.onSuspect = (t, why) => heard.push(`${t.id} ${why}`);
    const rt = route(1, 2);
    r.set(rt);
    r.markDown(rt.targets[0]!, 'timeout');
    r.markDown(rt.targets[0]!, 'timeout');
    r.markDown(rt.targets[1]!, 'refused');
    expect(heard).toEqual(['1.0 timeout', '1.1 refused']);
  });

  // A slow but alive instance must not be shunned for good if the master's answer is lost.
  it('a mark expires after a few seconds without a new route', async () => {
    const r = new Router();
    const rt = route(1, 1);
    r.set(rt);
    r.markDown(rt.targets[0]!, 'timeout');
    expect(r.pick()).toBeUndefined();
    await vi.advanceTimersByTimeAsync(4_900);
    expect(r.pick()).toBeUndefined();
    await vi.advanceTimersByTimeAsync(200);
    expect(r.pick()?.id).toBe('1.0');
  });

  it('other() gives a routable target that is not the one given, or nothing', () => {
    const r = new Router();
    const rt = route(1, 3);
    r.set(rt);
    r.markDown(rt.targets[1]!, 'timeout');
    for (let i = 0; i < 4; i++) expect(r.other(rt.targets[0]!)?.id).toBe('1.2');
    r.markDown(rt.targets[2]!, 'timeout');
    expect(r.other(rt.targets[0]!)).toBeUndefined();
  });
});

describe('Router.wait', () => {
  it('gives a target at once when one is routable', async () => {
    const r = new Router();
    r.set(route(1, 2));
    expect((await r.wait(1000)).id).toBe('1.0');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('queues without a route, and the next route with targets answers every waiter, round robin', async () => {
    const r = new Router();
    const waits = [r.wait(1000), r.wait(1000), r.wait(1000)];
    await vi.advanceTimersByTimeAsync(500);
    r.set(route(1, 2));
    expect(ids(await Promise.all(waits))).toEqual(['1.0', '1.1', '1.0']);
    // Their timeouts went with them.
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a route without targets leaves the waiters waiting', async () => {
    const r = new Router();
    let settled = false;
    const w = r.wait(1000).finally(() => { settled = true; });
    r.set(route(null, 0));
    await vi.advanceTimersByTimeAsync(10);
    expect(settled).toBe(false);
    r.set(route(2, 1, 2));
    expect((await w).id).toBe('2.0');
  });

  it('waits while every target is down, and a new route releases the wait', async () => {
    const r = new Router();
    const rt = route(1, 1);
    r.set(rt);
    r.markDown(rt.targets[0]!, 'refused');
    const w = r.wait(1000);
    r.set(route(2, 1, 2));
    expect((await w).id).toBe('2.0');
  });

  it('fails with NoRouteError (503) once the timeout passes, and not before', async () => {
    const r = new Router();
    let err: unknown;
    const w = r.wait(1000).catch((e: unknown) => { err = e; });
    await vi.advanceTimersByTimeAsync(999);
    expect(err).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    await w;
    expect(err).toBeInstanceOf(NoRouteError);
    // A waiter that timed out is gone: a later route does not hand it a target.
    r.set(route(1, 1));
    expect(picks(r, 1)).toEqual(['1.0']);
  });

  it('close fails every waiter with StoppingError and leaves no timer behind', async () => {
    const r = new Router();
    const waits = [r.wait(10_000), r.wait(10_000)].map((p) => p.then(() => 'resolved', (e: unknown) => e));
    r.close();
    for (const e of await Promise.all(waits)) expect(e).toBeInstanceOf(StoppingError);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('after close, a request with nowhere to go fails at once with StoppingError', async () => {
    const r = new Router();
    r.close();
    await expect(r.wait(10_000)).rejects.toBeInstanceOf(StoppingError);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('Router.pause (hotproxy pause)', () => {
  it('hands out nothing while paused, even with targets, and other() still answers in-flight retries', () => {
    const r = new Router();
    const rt = route(1, 2);
    r.set(rt);
    r.pause();
    expect(r.pick()).toBeUndefined();
    expect(r.other(rt.targets[0]!)?.id).toBe('1.1');
  });

  it('holds waiters past their queue timeout, and resume releases them in the order they came', async () => {
    const r = new Router();
    r.set(route(1, 3));
    r.pause();
    const order: string[] = [];
    const waits = ['a', 'b', 'c', 'd'].map((name) => r.wait(1000).then((t) => order.push(`${name}:${t.id}`)));
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(order).toEqual([]);
    expect(r.held).toBe(4);
    expect(r.resume()).toBe(4);
    await Promise.all(waits);
    expect(order).toEqual(['a:1.0', 'b:1.1', 'c:1.2', 'd:1.0']);
    expect(r.held).toBe(0);
  });

  it('a waiter that was queued before the pause stops its clock, and gets a fresh queue timeout at resume', async () => {
    const r = new Router();
    let err: unknown;
    const w = r.wait(1000).catch((e: unknown) => { err = e; });
    await vi.advanceTimersByTimeAsync(900);
    r.pause();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(err).toBeUndefined();
    r.resume(); // still no route: its queue timeout starts again
    await vi.advanceTimersByTimeAsync(999);
    expect(err).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    await w;
    expect(err).toBeInstanceOf(NoRouteError);
  });

  it('a new route while paused does not release anyone; resume sends them to it', async () => {
    const r = new Router();
    r.set(route(1, 1));
    r.pause();
    let got: string | undefined;
    const w = r.wait(1000).then((t) => { got = t.id; });
    r.set(route(2, 1, 2));
    await vi.advanceTimersByTimeAsync(10);
    expect(got).toBeUndefined();
    r.resume();
    await w;
    expect(got).toBe('2.0');
  });

  it('expire() fails what is held with a 503 error and lets new requests through', async () => {
    const r = new Router();
    r.set(route(1, 1));
    r.pause();
    const waits = [r.wait(1000), r.wait(1000)].map((p) => p.then(() => 'resolved', (e: unknown) => e));
    expect(r.expire()).toBe(2);
    for (const e of await Promise.all(waits)) {
      expect(e).toBeInstanceOf(PauseExpiredError);
      expect(statusFor(e)).toBe(503);
    }
    expect(r.pick()?.id).toBe('1.0');
    expect(r.resume()).toBe(0);
  });
});
