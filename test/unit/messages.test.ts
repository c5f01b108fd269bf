// The log messages tests look for (src/messages.ts) are what the source logs, and the tests
// can only look for those: a test that waits for, or rules out, a message nobody logs would
// pass or time out whatever hotproxy does.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as MESSAGES from '../../src/messages.js';
import { BACKEND_SIGKILLED, DEPLOYED, DRAIN_DEADLINE, NODE_INTERNAL_MISSING } from '../../src/messages.js';
import { NODE_INTERNAL_MISSING as FROM_INTERNALS } from '../../src/internals/index.js';
import { Hotproxy, ROOT } from '../helpers/hotproxy.js';

const files = (dir: string, ext: RegExp): string[] => readdirSync(dir, { recursive: true, encoding: 'utf8' })
  .filter((f) => ext.test(f)).map((f) => join(dir, f));
const SRC = join(ROOT, 'src');
const sources = files(SRC, /\.ts$/).filter((f) => !f.endsWith('/messages.ts')).map((f) => ({ f: relative(ROOT, f), text: readFileSync(f, 'utf8') }));
const entries = Object.entries(MESSAGES) as [string, string | ((...a: never[]) => string)][];
/** A message's fixed text: a string's whole, a function's longest piece between its variable parts. */
const fixedText = (m: string | ((...a: never[]) => string)): string => (typeof m === 'string' ? m
  : (m as (...a: string[]) => string)(...Array.from({ length: m.length }, () => '\u0000')).split('\u0000').sort((a, b) => b.length - a.length)[0]!);

/** A Hotproxy around no process, with the log lines given. */
function logged(...msgs: string[]): Hotproxy {
  const proc = { exited: new Promise<void>(() => {}), onLine: () => {}, pid: 0 };
  const hp = new Hotproxy(proc as unknown as ConstructorParameters<typeof Hotproxy>[0]);
  for (const msg of msgs) hp.logs.push({ msg, level: 30 });
  return hp;
}

describe('log messages', () => {
  it('are strings or functions of their variable parts, each with its own text', () => {
    expect(entries.length).toBeGreaterThan(20);
    for (const [name, m] of entries) {
      expect(typeof m === 'string' || typeof m === 'function', name).toBe(true);
      expect(fixedText(m).length, name).toBeGreaterThan(3);
    }
    const texts = entries.map(([, m]) => fixedText(m));
    expect(new Set(texts).size).toBe(texts.length);
    expect(FROM_INTERNALS).toBe(NODE_INTERNAL_MISSING);
  });

  it('are each logged by the source, which spells none of them out itself', () => {
    for (const [name, m] of entries) {
      // Used in a statement of its own, not only imported or re-exported.
      const uses = sources.filter(({ text }) => text.split('\n').some((l) => new RegExp(`\\b${name}\\b`).test(l) && !/^\s*(import|export) /.test(l)));
      expect(uses.map((u) => u.f), `${name} is logged nowhere in src`).not.toEqual([]);
      const spelled = sources.filter(({ text }) => (typeof m === 'string' ? [`'${m}'`, `"${m}"`, `\`${m}`] : [fixedText(m)]).some((t) => text.includes(t)));
      expect(spelled.map((s) => s.f), `the text of ${name}`).toEqual([]);
    }
  });

  it("the test helper's find() and waitForLog() take only a known message", () => {
    const hp = logged(DEPLOYED, BACKEND_SIGKILLED(1000), 'slow request started');
    expect(hp.find(DEPLOYED)?.msg).toBe(DEPLOYED);
    expect(hp.find(DRAIN_DEADLINE)).toBeUndefined(); // known, not logged
    expect(hp.find(BACKEND_SIGKILLED(1000))?.msg).toBe(BACKEND_SIGKILLED(1000));
    expect(hp.find(BACKEND_SIGKILLED(2000))).toBeUndefined();
    expect(hp.find('slow request started')?.msg).toBe('slow request started'); // what test/fixtures/node-app.js prints
    // What tcp.test.ts once asserted never appears: a piece of DRAIN_DEADLINE, which nothing logs.
    const unknown = ['Drain deadline passed', `${DEPLOYED} `, 'deployed', 'Backend did not exit within 1000 ms', 'slow request'];
    for (const msg of unknown) {
      expect(() => hp.find(msg), msg).toThrow(/no such log message/);
      expect(() => hp.waitForLog(msg), msg).toThrow(/no such log message/); // at once, not at its timeout
    }
  });

  it('tests name no log message by its text: only a constant, or what a fixture prints', () => {
    // What the fixtures print, up to the first variable part.
    const printed = files(join(ROOT, 'test/fixtures'), /\.(js|py|psgi|pl|rb|sh)$/)
      .flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/(['"`])([^'"`\n]+?)(?:\1|\$\{)/g)].map((x) => x[2]!));
    expect(printed).toContain('slow request started');
    expect(printed).toContain('grandchild ');
    // A literal where a log message goes: find/waitForLog's argument, compared with a line's msg.
    const AT = /(?:\.find\(|\.waitForLog\(|(?<!typeof [\w.]*)\bmsg\s*[!=]==?\s*|\bmsg\.startsWith\(|\.msg\)\.toBe\()\s*(['"`])((?:(?!\1).)*)\1/g;
    const REGEX_AT = /\.msg\)\.(?:not\.)?toMatch\(/;
    const tests = files(join(ROOT, 'test'), /\.ts$/).filter((f) => !f.endsWith('unit/messages.test.ts'));
    expect(tests.length).toBeGreaterThan(20);
    const bad: string[] = [];
    for (const f of tests) {
      readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
        const at = `${relative(ROOT, f)}:${i + 1}`;
        for (const [, , text] of line.matchAll(AT)) if (!printed.some((p) => p.startsWith(text!))) bad.push(`${at}: ${JSON.stringify(text)}`);
        if (REGEX_AT.test(line)) bad.push(`${at}: a message matched by a pattern`);
      });
    }
    expect(bad, 'use the constant from src/messages.ts').toEqual([]);
  });
});
