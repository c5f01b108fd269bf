// A connection is handed over at a request boundary: every byte of the answer before it must
// be out of the retiring worker first. The hard case is a long answer whose last bytes the
// proxy read from the backend while it was handing over: the exchange ends with them still to
// be written, and a connection moved then loses them when that write completes only in part.
// Which write does is the kernel's business (on socket streams, about 1 in 100 ends of an
// answer to a client that reads slower than the proxy writes; the storm test meets it too), so
// many slow clients take part at once, and CI runs this on four Nodes.
import http from 'node:http';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { block, bytes } from './bytes.js';
import { MODES, startProxied } from './harness.js';
import { CONNECTIONS_HANDED_OVER } from '../../src/messages.js';

const CLIENTS = 24;
/** Past what the kernel buffers between backend and client hold when a client stops reading. */
const SIZE = 8 << 20;
const STOP_AT = 256 << 10;
/** A pause between reads (64 KiB at most each) slow enough that the proxy waits for the client. */
const GAP_MS = 20;
const IDLE_MS = 10_000;

/** The backend's body for /sd?size&seed, hashed (backend.js: its block, entered at seed × 7919). */
function hashOf(size: number, seed: number): string {
  const h = createHash('sha256');
  for (const b of bytes(block(0x9e3779b9), size, seed, 1 << 20, 7919)) h.update(b);
  return h.digest('hex');
}

interface Got { status: number; bytes: number; sha256: string; reused: boolean }

/** Where a client stops until `go`, and what it does then. */
interface Stop { at: number; stopped(): void; go: Promise<unknown> }

/** One GET on `agent`, read a piece at a time: fast up to `stop.at`, then, after `stop.go`, GAP_MS apart. */
function get(port: number, agent: http.Agent, path: string, stop?: Stop): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.get({ port, host: '127.0.0.1', path, agent, timeout: IDLE_MS }, (res) => {
      const h = createHash('sha256');
      let n = 0;
      let waited = false;
      res.on('data', (d: Buffer) => {
        h.update(d);
        n += d.length;
        if (stop === undefined || n < stop.at) return;
        res.pause();
        if (!waited) stop.stopped();
        waited = true;
        stop.go.then(() => setTimeout(() => res.resume(), GAP_MS), reject);
      });
      res.on('end', () => resolve({ status: res.statusCode!, bytes: n, sha256: h.digest('hex'), reused: req.reusedSocket }));
      res.on('error', reject);
    });
    req.on('error', reject);
    // A lost tail leaves the connection silent: say so rather than wait for the test's timeout.
    req.on('timeout', () => req.destroy(new Error(`${path}: nothing for ${IDLE_MS} ms`)));
  });
}

const modes = MODES.filter((m) => m.proto === 'http' && m.client === undefined && m.args.includes('raw') && m.fallbacks?.includes('handover') !== true);

describe.each(modes)('$name', (mode) => {
  it.for(['chunked', 'cl'])(`${CLIENTS} slow clients of 8 MiB %s answers the proxy finished reading while handing over get them whole, and their connections serve on`, async (te) => {
    const hp = await startProxied(mode);
    const agents = Array.from({ length: CLIENTS }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
    try {
      // Each client stops STOP_AT in, holding the rest of its answer back in the proxy; once all
      // have, the upgrade begins the hand-over with every exchange running, and they go on slowly.
      let stopped = 0;
      let allStopped!: () => void;
      const go = new Promise<void>((r) => (allStopped = r)).then(() => hp.upgrade());
      const stop: Stop = { at: STOP_AT, stopped: () => { if (++stopped === CLIENTS) allStopped(); }, go };
      const runs = agents.map(async (agent, i) => [
        await get(hp.port, agent, `/sd?size=${SIZE}&seed=${i}&te=${te}`, stop),
        await get(hp.port, agent, `/sd?size=1000&seed=1&te=${te}`),
      ]);
      const got = await Promise.all(runs);
      expect(got).toEqual(agents.map((_, i) => [
        { status: 200, bytes: SIZE, sha256: hashOf(SIZE, i), reused: false },
        { status: 200, bytes: 1000, sha256: hashOf(1000, 1), reused: true },
      ]));
      expect((await hp.waitForLog(CONNECTIONS_HANDED_OVER)).handedOver).toBe(CLIENTS);
    } finally {
      for (const a of agents) a.destroy();
    }
    expect(await hp.stop()).toBe(0);
  }, 60_000);
});
