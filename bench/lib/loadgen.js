// Throughput load: wrk when installed (C, one thread, cheap per request — it leaves more of a
// small machine to the proxy), else autocannon in-process. Both report the same shape.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Proc, which } from '../../harness/procs.js';

const require = createRequire(import.meta.url);
// autocannon is CommonJS; require() keeps it out of the import graph when wrk is used.
const autocannon = () => require('autocannon');

export function pickTool(without = []) {
  if (!without.includes('wrk') && which('wrk')) return 'wrk';
  return 'autocannon';
}

/**
 * Runs load for `seconds` against `url` and returns { requests, rps, p50Ms, p99Ms, errors, non2xx }.
 * `uploadBytes`: every request is a POST with a body of that many bytes.
 */
export function measure(tool, url, { seconds, connections = 50, uploadBytes = 0 }) {
  return tool === 'wrk' ? runWrk(url, seconds, connections, uploadBytes) : runAutocannon(url, seconds, connections, uploadBytes);
}

async function runWrk(url, seconds, connections, uploadBytes) {
  const script = uploadBytes ? uploadScript(uploadBytes) : undefined;
  const wrk = new Proc(which('wrk'), ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...(script ? ['-s', script.file] : []), url], { keepStdout: true });
  // wrk stops itself; the timer only guards against a hang.
  const guard = setTimeout(() => wrk.stop(2_000), (seconds + 15) * 1000);
  const code = await wrk.exited;
  clearTimeout(guard);
  script?.remove();
  if (code !== 0) throw new Error(`wrk exited ${code}: ${wrk.stderr.trim()}`);
  return parseWrk(wrk.stdout);
}

const UNIT_MS = { us: 1e-3, ms: 1, s: 1000, m: 60_000 };
function toMs(text) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  return m ? Number(m[1]) * UNIT_MS[m[2]] : NaN;
}

export function parseWrk(out) {
  const num = (re) => { const m = re.exec(out); return m ? m[1] : undefined; };
  const requests = Number(num(/(\d+) requests in/));
  const seconds = toMs(num(/requests in ([\d.]+\w+),/) ?? '') / 1000;
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests,
    rps: Number(num(/Requests\/sec:\s+([\d.]+)/)),
    seconds,
    p50Ms: toMs(num(/^\s+50%\s+(\S+)/m) ?? ''),
    p99Ms: toMs(num(/^\s+99%\s+(\S+)/m) ?? ''),
    errors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    non2xx: Number(num(/Non-2xx or 3xx responses: (\d+)/) ?? 0),
  };
}

/** A wrk script that POSTs `bytes` bytes with every request. */
function uploadScript(bytes) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotproxy-wrk-'));
  const file = path.join(dir, 'upload.lua');
  fs.writeFileSync(file, `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/octet-stream"\nwrk.body = string.rep("u", ${bytes})\n`);
  return { file, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

function runAutocannon(url, seconds, connections, uploadBytes) {
  return new Promise((resolve, reject) => {
    const upload = uploadBytes ? { method: 'POST', body: Buffer.alloc(uploadBytes, 'u') } : {};
    autocannon()({ url, connections, pipelining: 1, duration: seconds, ...upload }, (err, r) => {
      if (err) return reject(err);
      resolve({
        requests: r.requests.total,
        rps: r.requests.total / r.duration,
        seconds: r.duration,
        p50Ms: r.latency.p50,
        p99Ms: r.latency.p99,
        errors: r.errors,
        non2xx: r.non2xx,
      });
    });
  });
}

/**
 * autocannon as a storm client: runs until stop(), and reads each body so that, like the
 * no-retry client, it can tell when a new generation's pid first answered.
 */
export class AutocannonLoad {
  constructor(url, connections = 20) {
    this.firstSeen = new Map();
    this.byGen = new Map();
    const onResponse = (status, body) => {
      if (status !== 200) return;
      try {
        const { pid, gen } = JSON.parse(body);
        if (!this.firstSeen.has(pid)) this.firstSeen.set(pid, performance.now());
        this.byGen.set(gen, (this.byGen.get(gen) ?? 0) + 1);
      } catch { /* not a fixture body */ }
    };
    this.done = new Promise((resolve, reject) => {
      // A long duration; stop() ends it. The callback form, because the instance returned
      // without one is a thenable that an accidental `await` would wait out.
      this.instance = autocannon()({ url, connections, pipelining: 1, duration: 3600, requests: [{ method: 'GET', path: '/', onResponse }] },
        (err, r) => (err ? reject(err) : resolve(r)));
    });
  }

  async stop() {
    this.instance.stop();
    const r = await this.done;
    const failed = r.errors + r.non2xx;
    return {
      requests: r.requests.total,
      ok: r['2xx'],
      failed,
      errors: { errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx, resets: r.resets },
      byGen: Object.fromEntries([...this.byGen].sort((a, b) => a[0] - b[0])),
    };
  }
}
