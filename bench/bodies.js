// Bodies and connection counts: what a proxy costs per byte (1 and 16 MiB answers, a chunked
// answer made of 16 KiB writes, uploads of the same sizes) and with many keep-alive
// connections at once (1,000 and 10,000), hotproxy beside HAProxy in the same run. Each case
// is the overhead bench (interleaved rounds, medians) on its own target list.
import { runOverhead } from './overhead.js';

const HTTP = ['hotproxy http', 'HAProxy http'];
const BOTH = [...HTTP, 'hotproxy tcp', 'HAProxy tcp'];
const MiB = 1 << 20;

/** name, request path, connections, upload size, targets. */
export const BODY_CASES = [
  { name: '1 MiB answers', path: '/1m', connections: 8, only: BOTH },
  { name: '16 MiB answers', path: '/16m', connections: 4, only: BOTH },
  { name: '1 MiB chunked answers (64 writes of 16 KiB)', path: '/1m/chunked', connections: 8, only: HTTP },
  { name: '1 MiB uploads', path: '/', connections: 8, uploadBytes: MiB, only: BOTH },
  { name: '16 MiB uploads', path: '/', connections: 4, uploadBytes: 16 * MiB, only: HTTP },
];
export const CONNECTION_CASES = [
  { name: '1,000 keep-alive connections, 12-byte answers', path: '/', connections: 1_000, only: BOTH },
  { name: '10,000 keep-alive connections, 12-byte answers', path: '/', connections: 10_000, only: HTTP },
];

export async function runCases(cases, { quick, tool, without, log }) {
  const out = [];
  for (const c of cases) {
    log(`${c.name}`);
    out.push({ name: c.name, ...(await runOverhead({ quick, tool, without, log, ...c })) });
  }
  return out;
}
