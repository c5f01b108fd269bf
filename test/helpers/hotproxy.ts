// The hotproxy harness the bench shares (harness/hotproxy.js), for vitest: every test ends
// with whatever it started gone, and fails if anything outlived it; and a test can only look
// for a log message that exists (src/messages.ts, or a line a test fixture prints), so none
// waits for, or rules out, a message nobody logs.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { afterEach } from 'vitest';
import { reapAll, ROOT, runCli, setMessageCheck } from '../../harness/hotproxy.js';
import * as MESSAGES from '../../src/messages.js';

export { CLI, Hotproxy, NODE_APP, ROOT, expectNothingLeft, fixture, runCli, startHotproxy } from '../../harness/hotproxy.js';
export type { LogLine, StartOptions } from '../../harness/hotproxy.js';

/** A control command (`status`, `reload … -- cmd`) to the hotproxy started with `--runtime-dir dir`. */
export function runCliIn(dir: string, ...args: string[]): ReturnType<typeof runCli> {
  // The option goes before a reload's `--`, or it would be part of the command.
  const end = args.includes('--') ? args.indexOf('--') : args.length;
  return runCli([...args.slice(0, end), '--runtime-dir', dir, ...args.slice(end)]);
}

/** Kills whatever a test left running and fails the test if anything survives. */
export async function cleanup(): Promise<void> {
  const survivors = await reapAll();
  if (survivors.length) throw new Error(`processes outlived their test: ${survivors.join(', ')}`);
}

/** Throws unless `msg` is a message hotproxy logs (src/messages.ts) or a line a test fixture prints. */
function expectKnownMessage(msg: string): void {
  knownMessages ??= messagePatterns();
  if (!knownMessages.some((m) => (typeof m === 'string' ? m === msg : m.test(msg)))) {
    throw new Error(`no such log message: ${JSON.stringify(msg)} is neither in src/messages.ts nor printed by a test fixture`);
  }
}

let knownMessages: (string | RegExp)[] | undefined;

function messagePatterns(): (string | RegExp)[] {
  const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // A message with a variable part, called with a marker for each part: its text around them.
  const HOLE = '\u0000';
  const ours = Object.values(MESSAGES).map((m) => (typeof m === 'string' ? m
    : new RegExp(`^${(m as (...a: string[]) => string)(...Array.from({ length: m.length }, () => HOLE)).split(HOLE).map(escape).join('.+')}$`)));
  // What the fixtures print: every quoted string in them with no ${…} part.
  const dir = `${ROOT}test/fixtures`;
  const fixtures = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => statSync(`${dir}/${f}`).isFile())
    .flatMap((f) => [...readFileSync(`${dir}/${f}`, 'utf8').matchAll(/(['"`])([^'"`\n$]+)\1/g)].map((x) => x[2]!));
  return [...ours, ...fixtures];
}

setMessageCheck(expectKnownMessage);
afterEach(cleanup);
