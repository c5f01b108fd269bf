// The access log's lines and its writer: whole lines per write, reopening by name (logrotate),
// and a disk that fails without a request noticing.
import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatLine, type AccessEntry } from '../../src/proxy/access-line.js';
import { AccessLog } from '../../src/proxy/access-log.js';
import { ACCESS_LOG_REOPENED, ACCESS_LOG_WRITE_FAILED } from '../../src/messages.js';
import { waitFor } from '../helpers/wait.js';

const T0 = 1_000_000_000_000n;
const entry = (over: Partial<AccessEntry> = {}): AccessEntry => ({
  method: 'GET', url: '/a?b=1', status: 200, bytes: 12, t0: T0, ttfb: T0 + 1_500_000n, gen: 3, pid: 4242, tries: 1,
  client: '127.0.0.1', requestId: 'b3a6d7a4-0f5c-4b6e-9d8e-1a2b3c4d5e6f', userAgent: 'curl/8.5.0', cut: undefined, ...over,
});

/** A logger that keeps the messages it was given. */
function memoryLog(): { log: pino.Logger; msgs: string[] } {
  const msgs: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => { msgs.push(JSON.parse(line).msg as string); } });
  return { log, msgs };
}

describe('an access log line', () => {
  it('is one JSON object on one line, with every field', () => {
    const now = Date.parse('2025-05-01T10:00:00.010Z');
    const line = formatLine(entry(), T0 + 2_345_678n, now);
    expect(line.endsWith('}\n')).toBe(true);
    expect(line.indexOf('\n')).toBe(line.length - 1);
    expect(JSON.parse(line)).toEqual({
      time: '2025-05-01T10:00:00.008Z', method: 'GET', target: '/a?b=1', status: 200, bytes: 12, durationMs: 2.346, ttfbMs: 1.5,
      gen: 3, instance: 4242, attempts: 1, client: '127.0.0.1', requestId: 'b3a6d7a4-0f5c-4b6e-9d8e-1a2b3c4d5e6f', userAgent: 'curl/8.5.0',
    });
  });

  it('says null for what there was none of, and how an incomplete answer was cut', () => {
    const l = JSON.parse(formatLine(entry({ status: 0, bytes: 0, ttfb: 0n, gen: 0, pid: 0, tries: 0, client: '', userAgent: undefined, cut: 'client' }), T0, 0));
    expect(l).toMatchObject({ status: 0, ttfbMs: null, gen: null, instance: null, attempts: 0, client: null, userAgent: null, cut: 'client' });
  });

  it('escapes what a client sent: quotes, backslashes, control characters', () => {
    const url = '/x?q="a\\b"\u0001';
    const ua = 'evil"\n{"status":200}';
    const line = formatLine(entry({ url, userAgent: ua, requestId: 'id"x' }), T0, 0);
    expect(line.split('\n')).toHaveLength(2);
    expect(JSON.parse(line)).toMatchObject({ target: url, userAgent: ua, requestId: 'id"x' });
  });
});

describe('the access log writer', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'hp-access-log-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const lines = (path: string): Record<string, unknown>[] =>
    readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

  it('appends every line whole, and has written them all once closed', async () => {
    const path = join(dir, 'a.log');
    const { log } = memoryLog();
    const al = AccessLog.open(path, log);
    // Lines long enough that a batch is many writes' worth: none may be cut.
    // Lines longer than a chunk too, and a character of three bytes.
    const target = (i: number): string => `/${i}?${(i % 10 === 0 ? 'é' : 'x').repeat(i % 100 === 0 ? 30_000 : i % 700)}`;
    for (let i = 0; i < 2000; i++) al.record(entry({ url: target(i) }));
    await al.close();
    const got = lines(path);
    expect(got.map((l) => l.target)).toEqual(Array.from({ length: 2000 }, (_, i) => target(i)));
  });

  it('on reopen, goes on in a new file by the name: what came before the reopen in the old one, none lost', async () => {
    const path = join(dir, 'a.log');
    const { log, msgs } = memoryLog();
    const al = AccessLog.open(path, log);
    for (let i = 0; i < 100; i++) al.record(entry({ url: `/${i}` }));
    renameSync(path, `${path}.1`);
    al.reopen();
    for (let i = 100; i < 200; i++) al.record(entry({ url: `/${i}` }));
    await waitFor(() => msgs.includes(ACCESS_LOG_REOPENED), 'the reopen');
    for (let i = 200; i < 300; i++) al.record(entry({ url: `/${i}` }));
    await al.close();
    const before = lines(`${path}.1`).map((l) => l.target);
    const after = lines(path).map((l) => l.target);
    expect(before).toEqual(Array.from({ length: 100 }, (_, i) => `/${i}`));
    expect(after).toEqual(Array.from({ length: 200 }, (_, i) => `/${i + 100}`));
  });

  it('a disk that fails is said once, and what cannot be written is dropped', async () => {
    const { log, msgs } = memoryLog();
    const al = AccessLog.open('/dev/full', log);
    for (let i = 0; i < 10; i++) al.record(entry());
    await waitFor(() => msgs.includes(ACCESS_LOG_WRITE_FAILED), 'the failure');
    // Enough for a write of its own, twice.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 200; i++) al.record(entry({ url: `/${'x'.repeat(500)}` }));
      await new Promise((r) => setImmediate(r));
    }
    await al.close();
    expect(msgs.filter((m) => m === ACCESS_LOG_WRITE_FAILED)).toHaveLength(1);
  });

  it('a file that cannot be opened is said, and serving goes on without it', async () => {
    const { log, msgs } = memoryLog();
    const al = AccessLog.open(join(dir, 'missing', 'a.log'), log);
    al.record(entry());
    al.reopen();
    await al.close();
    expect(msgs).toEqual([ACCESS_LOG_WRITE_FAILED]);
  });
});
