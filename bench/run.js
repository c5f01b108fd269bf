// Benchmark entry: `node bench/run.js [--quick] [--without wrk,haproxy,nginx]`.
// Writes bench/results/latest.json and latest.md and prints the Markdown. Every process it
// starts is stopped on the way out, including on errors and Ctrl-C.
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { runOverhead } from './overhead.js';
import { runAppStart } from './appstart.js';
import { runReadiness } from './readiness.js';
import { runIdle } from './idle.js';
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

function machine() {
  const cpus = os.cpus();
  return {
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
  const result = { quick, machine: machine(), overhead: undefined, storm: undefined, upgradeStorm: undefined };
  result.overhead = await step(() => runOverhead({ quick, tool, without, log }));
  result.overheadLarge = await step(() => runOverhead({ quick, tool, without, log, path: '/1m', connections: 8 }));
  result.storm = await step(() => runStorm(SWAP_STORM, { quick, log }));
  result.upgradeStorm = await step(() => runStorm(UPGRADE_STORM, { quick, log }));
  result.appStart = await runAppStart({ quick, log });
  result.readiness = await step(() => runReadiness({ quick, log }));
  result.idle = await step(() => runIdle({ quick, log }));
  result.elapsedS = (Date.now() - started) / 1000;

  const md = renderMarkdown(result);
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(`${RESULTS}latest.json`, `${JSON.stringify(result, null, 2)}\n`);
  fs.writeFileSync(`${RESULTS}latest.md`, md);
  process.stdout.write(md);
  log(`done in ${result.elapsedS.toFixed(1)}s; wrote bench/results/latest.{json,md}`);
}

try {
  await main();
} catch (err) {
  process.exitCode = 1;
  log(`failed: ${err.stack ?? err}`);
} finally {
  await stopAll(10_000);
}
