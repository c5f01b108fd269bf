import { describe, expect, it } from 'vitest';
import { HealthRecord } from '../../src/health/record.js';

describe('HealthRecord (--health-fall out, --health-rise back)', () => {
  it('fall consecutive failures take an instance out of rotation, and say when', () => {
    const r = new HealthRecord(3, 2);
    expect(r.fail('a', 1)).toBe(false);
    expect(r.fail('b', 2)).toBe(false);
    expect(r.inRotation).toBe(true);
    expect(r.unsettled).toBe(true);
    expect(r.fail('c', 3)).toBe(true);
    expect(r.inRotation).toBe(false);
    expect(r.health).toBe('unhealthy');
    expect(r.outSince).toBe(3);
    expect(r.reason).toBe('c');
    // Further failures are no new verdict.
    expect(r.fail('d', 4)).toBe(false);
    expect(r.outSince).toBe(3);
  });

  // One slow answer or one failed check is not a verdict on an instance that is alive.
  it('a pass between failures starts the count again', () => {
    const r = new HealthRecord(3, 2);
    r.fail('a', 1);
    r.fail('b', 2);
    expect(r.pass()).toBe(false);
    expect(r.reason).toBeUndefined();
    expect(r.fail('c', 3)).toBe(false);
    expect(r.fail('d', 4)).toBe(false);
    expect(r.inRotation).toBe(true);
  });

  it('rise consecutive passes bring it back, and a failure between them starts that count again', () => {
    const r = new HealthRecord(1, 2);
    r.fail('a', 1);
    expect(r.pass()).toBe(false);
    expect(r.unsettled).toBe(true);
    r.fail('b', 2);
    expect(r.pass()).toBe(false);
    expect(r.pass()).toBe(true);
    expect(r.inRotation).toBe(true);
    expect(r.outSince).toBeUndefined();
    expect(r.unsettled).toBe(false);
  });
});
