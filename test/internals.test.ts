// Node internals live in src/internals and nowhere else: a newcomer finds every one there,
// with its probe and its fallback.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/hotproxy.js';

const INTERNAL_USE = /\b_handle\b|process\.binding|_http_common|_createServerHandle|_httpMessage|\._connections\b|http\.server\.connections|keepOpen/;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('Node internals', () => {
  it('are touched only in src/internals', () => {
    const src = join(ROOT, 'src');
    const files = sources(src);
    expect(files.length).toBeGreaterThan(40);
    const outside = files
      .filter((f) => !relative(src, f).startsWith('internals/'))
      .flatMap((f) => readFileSync(f, 'utf8').split('\n').map((line, i) => ({ f, i, line })))
      .filter(({ line }) => !line.trim().startsWith('//') && INTERNAL_USE.test(line))
      .map(({ f, i, line }) => `${relative(ROOT, f)}:${i + 1}: ${line.trim()}`);
    expect(outside).toEqual([]);
    // The pattern finds what it is meant to find.
    const inside = files.filter((f) => relative(src, f).startsWith('internals/') && INTERNAL_USE.test(readFileSync(f, 'utf8')));
    expect(inside.length).toBeGreaterThanOrEqual(3);
  });
});
