import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { StateMachine, type Moves } from '../../src/state.js';

type S = 'starting' | 'active' | 'draining' | 'stopped' | 'failed';
const MOVES: Moves<S> = {
  starting: ['active', 'failed', 'stopped'],
  active: ['draining', 'stopped'],
  draining: ['stopped'],
  failed: ['stopped'],
  stopped: [],
};

function machine(): { m: StateMachine<S>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { m: new StateMachine<S>('starting', MOVES, pino({ level: 'debug' }, sink), 'Generation state'), lines };
}

describe('state machine', () => {
  it('an allowed move changes the state and logs {from, to}', () => {
    const { m, lines } = machine();
    m.to('active');
    m.to('draining');
    expect(m.state).toBe('draining');
    expect(lines.map((l) => [l.msg, l.from, l.to])).toEqual([
      ['Generation state', 'starting', 'active'],
      ['Generation state', 'active', 'draining'],
    ]);
  });

  it('a move the table does not allow throws and leaves the state as it was', () => {
    const { m, lines } = machine();
    m.to('failed');
    expect(() => m.to('active')).toThrow('Generation state: failed → active is not an allowed move');
    expect(m.state).toBe('failed');
    expect(lines).toHaveLength(1);
  });

  it('staying in the same state is allowed and not logged', () => {
    const { m, lines } = machine();
    m.to('stopped');
    m.to('stopped');
    expect(lines).toHaveLength(1);
    expect(m.can('stopped')).toBe(true);
    expect(m.can('active')).toBe(false);
  });
});
