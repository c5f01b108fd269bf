import { describe, expect, it } from 'vitest';
import { bucket, CANARY_COOKIE, place } from '../../src/proxy/canary.js';

const canary = { gen: 7, targets: [], percent: 20 };

describe('canary placement', () => {
  it('spreads client addresses evenly: 20 % of 10,000 addresses go to the canary, within a point', () => {
    let n = 0;
    for (let i = 0; i < 10_000; i++) if (place(canary, [], `10.${(i >> 8) & 255}.${i & 255}.${(i * 7) & 255}`).toCanary) n++;
    expect(n / 10_000).toBeGreaterThan(0.19);
    expect(n / 10_000).toBeLessThan(0.21);
  });

  it('the same address lands on the same side every time, and is told so by a cookie for this canary', () => {
    const a = place(canary, [], '192.0.2.10');
    for (let i = 0; i < 5; i++) expect(place(canary, [], '192.0.2.10').toCanary).toBe(a.toCanary);
    expect(a.setCookie).toBe(`${CANARY_COOKIE}=${a.toCanary ? 'c' : 'm'}7; Path=/; HttpOnly; SameSite=Lax`);
  });

  it("a client's cookie wins over its address, and is not set again", () => {
    for (const address of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) {
      expect(place(canary, [`a=1; ${CANARY_COOKIE}=c7; b=2`], address)).toEqual({ toCanary: true, setCookie: undefined });
      expect(place(canary, [`${CANARY_COOKIE}=m7`], address)).toEqual({ toCanary: false, setCookie: undefined });
    }
  });

  it("a cookie from an earlier canary counts for nothing", () => {
    const p = place(canary, [`${CANARY_COOKIE}=c6`], '192.0.2.10');
    expect(p.toCanary).toBe(bucket('192.0.2.10') < 2_000);
    expect(p.setCookie).toBeDefined();
  });

  it('0 % sends nobody and 100 % everybody', () => {
    for (const address of ['::1', '127.0.0.1', '203.0.113.9']) {
      expect(place({ ...canary, percent: 0 }, [], address).toCanary).toBe(false);
      expect(place({ ...canary, percent: 100 }, [], address).toCanary).toBe(true);
    }
  });
});
