// TLS at the edge: hotproxy's --listen-tls against HAProxy terminating TLS with the same
// certificate and key, in the same run, one proxy worker/thread each, the same backend
// (bench/backend.js). Load from h2load (nghttp2-client: C and OpenSSL, so the client costs the
// two shared cores little). Cases:
//   handshake: full TLS 1.3 handshakes, one small HTTP/1.1 request each: batches of
//     `h2load --h1 -c B -n B`, so every client makes exactly one connection with no session to
//     resume (HAProxy's `show info` says SslFrontendSessionReuse_pct 0 under it), repeated for
//     the measured time; handshakes/s over h2load's own time, proxy CPU per handshake. Once per
//     certificate: RSA 2048 and ECDSA P-256, generated here with openssl.
//   resumed: a new connection per request with `Connection: close`: h2load reconnects after
//     every answer and resumes its session (98 % reused at HAProxy), so this is the cost of a
//     resumed TLS 1.3 handshake (PSK + X25519) plus the request.
//   h1: HTTP/1.1 over TLS, keep-alive connections, 12-byte answers.
//   h2: HTTP/2, `-c 10 -m 10`, 12-byte answers; and 1 MiB answers over h2.
// Every client offers TLS_AES_128_GCM_SHA256 only, so both proxies run the same cipher (left to
// themselves, Node picks AES-256-GCM and HAProxy AES-128-GCM for h2load's offer).
// Proxy CPU = utime+stime from /proc of hotproxy's master + proxy worker, or of HAProxy,
// across the measured h2load run ÷ what it completed.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHotproxy } from '../harness/hotproxy.js';
import { Proc, cpuMicros, freePort, waitForPort, which } from '../harness/procs.js';
import { haproxyMissing, startHaproxyTls } from './lib/proxies.js';

const BACKEND = fileURLToPath(new URL('./backend.js', import.meta.url));
const CIPHER = 'TLS_AES_128_GCM_SHA256';

/** Why this section cannot run here, or undefined. */
export function tlsMissing(without = []) {
  if (without.includes('h2load')) return 'h2load disabled (--without)';
  if (!which('h2load')) return 'h2load not installed (apt-get install nghttp2-client)';
  if (!which('openssl')) return 'openssl not installed';
  return undefined;
}

/** The cases, in the order each target runs them. `per`: what one unit of work is. */
export const TLS_CASES = [
  { id: 'handshake', label: 'full handshake + 1 request (`--h1 -c 400 -n 400` batches)', args: ['--h1', '-c', '400', '-n', '400'], alpn: 'http/1.1', per: 'handshake', batch: true },
  { id: 'resumed', label: 'resumed handshake + 1 request (`--h1 -c 32`, Connection: close)', args: ['--h1', '-c', '32', '-H', 'connection: close'], alpn: 'http/1.1', per: 'handshake', warmN: 500, minN: 500 },
  { id: 'h1', label: 'h1 keep-alive, 12 B answers (`--h1 -c 50`)', args: ['--h1', '-c', '50'], alpn: 'http/1.1', per: 'request', warmN: 5_000 },
  { id: 'h2', label: 'h2, 12 B answers (`-c 10 -m 10`)', args: ['-c', '10', '-m', '10'], alpn: 'h2', per: 'request', warmN: 5_000 },
  { id: 'h2-1m', label: 'h2, 1 MiB answers (`-c 4 -m 2`)', args: ['-c', '4', '-m', '2'], path: '/1m', alpn: 'h2', per: 'answer', warmN: 200 },
];

/** Self-signed certificate and key for 127.0.0.1/localhost, in `dir`; returns their paths. */
function makeCert(dir, kind) {
  const key = path.join(dir, `${kind}.key`), cert = path.join(dir, `${kind}.crt`);
  const alg = kind === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  execFileSync('openssl', ['req', '-x509', ...alg, '-nodes', '-keyout', key, '-out', cert, '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  return { key, cert };
}

/** One h2load run to completion; parsed summary. A guard stops it if it hangs. */
async function h2load(url, args, guardS) {
  const p = new Proc(which('h2load'), ['--tls13-ciphers', CIPHER, ...args, url], { name: 'h2load', keepStdout: true });
  const guard = setTimeout(() => p.stop(2_000), guardS * 1000);
  const code = await p.exited;
  clearTimeout(guard);
  await p.closed;
  const r = parseH2load(p.stdout);
  if (code !== 0 || !(r.done > 0)) throw new Error(`h2load exited ${code}: ${(p.stderr || p.stdout).trim().split('\n').slice(-3).join(' / ')}`);
  return r;
}

const UNIT_S = { us: 1e-6, ms: 1e-3, s: 1 };
const seconds = (v, u) => Number(v) * UNIT_S[u];

export function parseH2load(out) {
  const get = (re) => re.exec(out);
  const fin = get(/finished in ([\d.]+)(us|ms|s),/);
  const req = get(/requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/);
  const codes = get(/status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/);
  const mean = get(/time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/);
  return {
    seconds: fin ? seconds(fin[1], fin[2]) : NaN,
    done: req ? Number(req[3]) : 0,
    succeeded: req ? Number(req[4]) : 0,
    errors: req ? Number(req[5]) + Number(req[6]) + Number(req[7]) : NaN,
    non2xx: codes ? Number(codes[2]) + Number(codes[3]) + Number(codes[4]) : NaN,
    meanMs: mean ? seconds(mean[1], mean[2]) * 1000 : NaN,
    tls: get(/TLS Protocol: (\S+)/)?.[1],
    cipher: get(/Cipher: (\S+)/)?.[1],
    tempKey: get(/Server Temp Key: (.+)/)?.[1]?.trim(),
    alpn: get(/Application protocol: (\S+)/)?.[1],
  };
}

/**
 * One case against one started target: a warm-up of `warmN` requests, which also tells how many
 * make about `measureS` seconds; then the measured run, with proxy CPU sampled around it.
 */
async function runCase(c, target, measureS) {
  const url = `${target.url}${c.path ?? '/'}`;
  let m, p0, b0;
  if (c.batch) {
    // Fixed batches (no -D: each client must connect once), until the time is used up.
    await h2load(url, c.args, 60);
    p0 = cpuMicros(target.proxyPids); b0 = cpuMicros(target.backendPids);
    const until = Date.now() + measureS * 1000;
    do {
      const b = await h2load(url, c.args, 60);
      m = m === undefined ? b : { ...b, seconds: m.seconds + b.seconds, done: m.done + b.done, succeeded: m.succeeded + b.succeeded,
        errors: m.errors + b.errors, non2xx: m.non2xx + b.non2xx, meanMs: (m.meanMs * m.done + b.meanMs * b.done) / (m.done + b.done) };
    } while (Date.now() < until);
  } else {
    // -n, not -D: with `Connection: close` h2load 1.52 never ends a -D run.
    const warm = await h2load(url, [...c.args, '-n', String(c.warmN)], 120);
    const n = Math.max(c.minN ?? 1_000, Math.round((warm.done / warm.seconds) * measureS));
    p0 = cpuMicros(target.proxyPids); b0 = cpuMicros(target.backendPids);
    m = await h2load(url, [...c.args, '-n', String(n)], measureS * 4 + 60);
  }
  const p1 = cpuMicros(target.proxyPids), b1 = cpuMicros(target.backendPids);
  const problems = [];
  if (m.tls !== 'TLSv1.3') problems.push(`negotiated ${m.tls}`);
  if (m.alpn !== c.alpn) problems.push(`ALPN ${m.alpn}, wanted ${c.alpn}`);
  return {
    case: c.id,
    target: target.name,
    proxy: target.proxy,
    cert: target.cert,
    units: m.succeeded,
    perSecond: m.succeeded / m.seconds,
    meanMs: m.meanMs,
    errors: m.errors,
    non2xx: m.non2xx,
    proxyCpuUsPer: (p1 - p0) / m.succeeded,
    backendCpuUsPer: (b1 - b0) / m.succeeded,
    tls: m.tls,
    cipher: m.cipher,
    tempKey: m.tempKey,
    alpn: m.alpn,
    problems,
  };
}

export async function runTls({ quick, without = [], rounds = quick ? 1 : 3, log = () => {} }) {
  const measureS = quick ? 3 : 5;
  const missing = tlsMissing(without);
  if (missing) { log(`tls: skipped (${missing})`); return { skipped: missing }; }
  const haproxySkip = without.includes('haproxy') ? 'haproxy disabled (--without)' : haproxyMissing();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotproxy-bench-tls-'));
  // Also on Ctrl-C, where run.js exits without unwinding this function.
  const removeDir = () => fs.rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir);
  const backendPort = await freePort();
  const backend = new Proc(process.execPath, [BACKEND], { name: 'backend', env: { PORT: String(backendPort), SERVER_STARTER_PORT: undefined } });
  /** "case|target" -> samples, one per round. */
  const samples = new Map();
  const skipped = [];
  try {
    const certs = { rsa: makeCert(dir, 'rsa'), ecdsa: makeCert(dir, 'ecdsa') };
    await waitForPort(backendPort, 10_000, backend);
    const hot = (cert) => async () => {
      const hp = await startHotproxy(['--mode', 'http', '--listen-tls', '127.0.0.1:0', '--tls-cert', certs[cert].cert, '--tls-key', certs[cert].key],
        [process.execPath, BACKEND], { proxyWorkers: 1 });
      return { url: hp.tlsUrl, proxyPids: hp.proxyPids(), backendPids: hp.activePids(), stop: () => hp.stop() };
    };
    const hap = (cert) => async () => {
      const e = await startHaproxyTls(backendPort, certs[cert]);
      return { url: e.url, proxyPids: e.proxyPids, backendPids: [backend.pid], stop: () => e.stop() };
    };
    const all = TLS_CASES.map((c) => c.id);
    const targets = [
      { name: 'hotproxy, RSA 2048', proxy: 'hotproxy', cert: 'RSA 2048', start: hot('rsa'), cases: all },
      { name: 'HAProxy, RSA 2048', proxy: 'HAProxy', cert: 'RSA 2048', start: hap('rsa'), cases: all, missing: haproxySkip },
      { name: 'hotproxy, ECDSA P-256', proxy: 'hotproxy', cert: 'ECDSA P-256', start: hot('ecdsa'), cases: ['handshake'] },
      { name: 'HAProxy, ECDSA P-256', proxy: 'HAProxy', cert: 'ECDSA P-256', start: hap('ecdsa'), cases: ['handshake'], missing: haproxySkip },
    ];
    for (const t of targets) if (t.missing) { skipped.push({ target: t.name, reason: t.missing }); log(`tls: ${t.name}: skipped (${t.missing})`); }

    // Rounds interleave the targets, so a slow minute on a shared machine hits all of them.
    for (let round = 1; round <= rounds; round++) for (const t of targets) {
      if (t.missing) continue;
      let target;
      try {
        target = { ...t, ...(await t.start()) };
        for (const id of t.cases) {
          const c = TLS_CASES.find((x) => x.id === id);
          log(`tls: round ${round}/${rounds}: ${t.name}: ${c.id}, ~${measureS}s`);
          try {
            const row = await runCase(c, target, measureS);
            if (row.problems.length) log(`tls: ${t.name} ${c.id}: ${row.problems.join('; ')}`);
            const key = `${c.id}|${t.name}`;
            if (!samples.has(key)) samples.set(key, []);
            samples.get(key).push(row);
          } catch (err) {
            skipped.push({ target: t.name, case: c.id, reason: `failed: ${err.message.split('\n')[0]}` });
            log(`tls: ${t.name} ${c.id}: ${err.message}`);
          }
        }
      } catch (err) {
        skipped.push({ target: t.name, reason: `failed to start: ${err.message.split('\n')[0]}` });
        log(`tls: ${t.name}: ${err.message}`);
      } finally {
        if (target) await target.stop();
      }
    }
  } finally {
    await backend.stop(5_000);
    process.removeListener('exit', removeDir);
    removeDir();
  }

  const rows = [...samples.values()].map(medianRow);
  // hotproxy ÷ HAProxy for the same case and certificate, in this run.
  for (const r of rows) {
    if (r.proxy !== 'hotproxy') continue;
    const ref = rows.find((x) => x.proxy === 'HAProxy' && x.case === r.case && x.cert === r.cert);
    if (ref) r.vsHaproxy = { cpu: r.proxyCpuUsPer / ref.proxyCpuUsPer, rate: r.perSecond / ref.perSecond };
  }
  return { cipher: CIPHER, measureS, rounds, cases: TLS_CASES.map(({ id, label, per }) => ({ id, label, per })), rows, skipped };
}

/** Each number is the median over the rounds on its own; `rounds` keeps every sample. */
function medianRow(list) {
  const med = (k) => {
    const v = list.map((s) => s[k]).filter((x) => typeof x === 'number' && !Number.isNaN(x)).sort((a, b) => a - b);
    return v.length ? v[(v.length - 1) >> 1] : null;
  };
  const row = { ...list[0], rounds: list.map((s) => ({ perSecond: s.perSecond, proxyCpuUsPer: s.proxyCpuUsPer })) };
  for (const k of ['units', 'perSecond', 'meanMs', 'proxyCpuUsPer', 'backendCpuUsPer']) row[k] = med(k);
  row.errors = list.reduce((a, s) => a + s.errors, 0);
  row.non2xx = list.reduce((a, s) => a + s.non2xx, 0);
  row.problems = [...new Set(list.flatMap((s) => s.problems))];
  return row;
}
