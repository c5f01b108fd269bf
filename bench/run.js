// Benchmark entry: `node bench/run.js [--quick] [--without wrk,haproxy,nginx,h2load] [--only PART,...] [--save NAME]`
// (parts: overhead, bodies, connections, workers, storm, upgrade, appstart, readiness, idle, tls).
// Writes bench/results/latest.json and latest.md and prints the Markdown. Every process it
// starts is stopped on the way out, including on errors and Ctrl-C.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { runOverhead } from './overhead.js';
import { runAppStart } from './appstart.js';
import { runReadiness } from './readiness.js';
import { runIdle } from './idle.js';
import { runTls } from './tls.js';
import { BODY_CASES, CONNECTION_CASES, runCases } from './bodies.js';
import { runWorkers } from './workers.js';
import { runStorm, SWAP_STORM, UPGRADE_STORM } from './storm.js';
import { reapAll } from '../harness/hotproxy.js';
import { killAllSync, stopAll } from '../harness/procs.js';
import { pickTool } from './lib/loadgen.js';
import { renderMarkdown } from './lib/report.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
// --without simulates a machine lacking a tool, to exercise the fallbacks and skip notes.
const wi = args.indexOf('--without');
const without = wi >= 0 ? (args[wi + 1] ?? '').split(',').filter(Boolean) : [];
// --only runs some parts (and writes a report of just those): `--only tls`.
const PARTS = ['overhead', 'bodies', 'connections', 'workers', 'storm', 'upgrade', 'appstart', 'readiness', 'idle', 'tls'];
const oi = args.indexOf('--only');
const only = oi >= 0 ? (args[oi + 1] ?? '').split(',').filter(Boolean) : undefined;
const unknown = (only ?? []).filter((p) => !PARTS.includes(p));
if (unknown.length || (only && !only.length)) {
  process.stderr.write(`--only takes some of ${PARTS.join(',')}; got ${unknown.join(',') || 'nothing'}\n`);
  process.exit(2);
}
const wanted = (part) => only === undefined || only.includes(part);
// --save NAME: the report is also written as bench/results/NAME.{json,md}, a snapshot to commit.
const si = args.indexOf('--save');
const save = si >= 0 ? args[si + 1] : undefined;
if (si >= 0 && !/^[\w.-]+$/.test(save ?? '')) {
  process.stderr.write('--save takes a file name (letters, digits, . _ -)\n');
  process.exit(2);
}
const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));

const started = Date.now();
const log = (msg) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}\n`);

// Ctrl-C / kill: stop children in order (SIGTERM, then SIGKILL after a deadline), then exit.
let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: stopping every process started by the bench`);
    stopAll(5_000).finally(() => process.exit(130));
  });
}
// If the process exits any other way with children still tracked, do not leave them behind.
process.on('exit', killAllSync);

/** The commit the bench ran (with "+changes" when the tree differs from it), so a report can be traced to its code. */
function commit() {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
    return `${head}${dirty ? '+changes' : ''}`;
  } catch {
    return 'unknown';
  }
}

function machine() {
  const cpus = os.cpus();
  return {
    commit: commit(),
    cores: cpus.length,
    cpuModel: cpus[0]?.model?.trim() ?? 'unknown',
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    date: new Date().toISOString(),
  };
}

/** Runs one part; whatever a hotproxy of it left behind is killed (and said) before the next. */
async function step(run) {
  try {
    return await run();
  } finally {
    const left = await reapAll();
    if (left.length) log(`killed processes a stopped hotproxy left behind: ${left.join(', ')}`);
  }
}

async function main() {
  const tool = pickTool(without);
  log(`${quick ? 'quick' : 'full'} run, load generator: ${tool}`);
  const result = { quick, only, machine: machine(), overhead: undefined, storm: undefined, upgradeStorm: undefined };
  if (wanted('overhead')) {
    result.overhead = await step(() => runOverhead({ quick, tool, without, log }));
  }
  if (wanted('bodies')) result.bodies = await step(() => runCases(BODY_CASES, { quick, tool, without, log }));
  if (wanted('connections')) result.connections = await step(() => runCases(CONNECTION_CASES, { quick, tool, without, log }));
  if (wanted('workers')) result.workers = await step(() => runWorkers({ quick, tool, log }));
  if (wanted('storm')) result.storm = await step(() => runStorm(SWAP_STORM, { quick, log }));
  if (wanted('upgrade')) result.upgradeStorm = await step(() => runStorm(UPGRADE_STORM, { quick, log }));
  // The swap-latency section compares the storm against the app's own start.
  if (wanted('appstart') || wanted('storm')) result.appStart = await runAppStart({ quick, log });
  if (wanted('readiness')) result.readiness = await step(() => runReadiness({ quick, log }));
  if (wanted('idle')) result.idle = await step(() => runIdle({ quick, log }));
  if (wanted('tls')) result.tls = await step(() => runTls({ quick, without, log }));
  result.elapsedS = (Date.now() - started) / 1000;

  const md = renderMarkdown(result);
  fs.mkdirSync(RESULTS, { recursive: true });
  // A partial run keeps the last full one's report.
  const base = only ? `only-${only.join('-')}` : 'latest';
  for (const name of [base, ...(save ? [save] : [])]) {
    fs.writeFileSync(`${RESULTS}${name}.json`, `${JSON.stringify(result, null, 2)}\n`);
    fs.writeFileSync(`${RESULTS}${name}.md`, md);
  }
  process.stdout.write(md);
  log(`done in ${result.elapsedS.toFixed(1)}s; wrote bench/results/${base}.{json,md}`);
}

try {
  await main();
} catch (err) {
  process.exitCode = 1;
  log(`failed: ${err.stack ?? err}`);
} finally {
  await stopAll(10_000);
}
