// Containers: hotproxy as PID 1 of its own PID namespace (what `docker run` without --init
// gives it), running the exact command of examples/docker/Dockerfile, probed the way
// examples/kubernetes/deployment.yaml probes it. No Docker engine is needed: unshare(1) makes
// the namespace, and the kernel kills whatever is left in it when PID 1 exits.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { expect, it } from 'vitest';
import { ROOT } from './helpers/hotproxy.js';
import { Load } from './helpers/load.js';
import { isAlive, waitFor } from './helpers/wait.js';
import { freePort } from './helpers/host.js';
import { DEPLOYED } from '../src/messages.js';

const canUnshare = process.getuid?.() === 0 && spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']).status === 0;
if (!canUnshare) console.warn('skipping the PID 1 test: needs root and unshare(1)');


/** The Dockerfile's CMD, with its ports swapped for free ones. */
function dockerCmd(port: number, admin: number): string[] {
  const line = readFileSync(`${ROOT}examples/docker/Dockerfile`, 'utf8').split('\n').find((l) => l.startsWith('CMD '))!;
  return (JSON.parse(line.slice(4)) as string[]).map((a) => (a === '8080' ? `127.0.0.1:${port}` : a === '0.0.0.0:9090' ? `127.0.0.1:${admin}` : a));
}

it.skipIf(!canUnshare)('as PID 1 with the Dockerfile\'s command: probes answer, HUP deploys, SIGTERM turns /ready 503, drains and exits 0', async () => {
  const [port, admin] = [await freePort(), await freePort()];
  const cmd = dockerCmd(port, admin);
  const outer = spawn('unshare', ['--pid', '--fork', '--mount-proc', '--kill-child', ...cmd], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  outer.stdout!.on('data', (d) => (logs += d));
  outer.stderr!.on('data', (d) => (logs += d));
  // hotproxy logs JSON here (its stdout is not a terminal).
  const logged = (msg: string, gen: number): boolean => logs.split('\n').some((l) => {
    try { const j = JSON.parse(l) as { msg?: string; gen?: number }; return j.msg === msg && j.gen === gen; } catch { return false; }
  });
  const exited = new Promise<number | null>((resolve) => outer.once('exit', (code) => resolve(code)));
  try {
    // hotproxy's pid as seen from here: unshare's only child.
    const pid1 = await waitFor(() => Number(readFileSync(`/proc/${outer.pid}/task/${outer.pid}/children`, 'utf8').trim()), 'the namespace\'s PID 1');
    expect(readFileSync(`/proc/${pid1}/status`, 'utf8')).toMatch(/^NSpid:\s+\d+\s+1$/m);
    await waitFor(async () => (await fetch(`http://127.0.0.1:${admin}/ready`).catch(() => undefined))?.status === 200, '/ready', 20_000);
    expect((await fetch(`http://127.0.0.1:${admin}/live`)).status).toBe(200);

    const load = new Load(`http://127.0.0.1:${port}`, 5);
    await waitFor(() => load.result.ok > 20, 'load');
    process.kill(pid1, 'SIGHUP');
    await waitFor(() => logged(DEPLOYED, 2), 'the second generation');
    await waitFor(() => load.result.ok > 200, 'more load');
    const result = await load.stop();
    expect(result.failed).toBe(0);

    // An idle keep-alive client keeps the stop going for the proxy's grace period, long
    // enough to see /ready answer 503 rather than only stop answering.
    const idle = net.connect(port, '127.0.0.1');
    let reply = '';
    idle.on('data', (d) => (reply += d)).on('error', () => {});
    idle.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => reply.includes('hello from node-app'), 'a response on the idle connection');
    process.kill(pid1, 'SIGTERM');
    await waitFor(async () => (await fetch(`http://127.0.0.1:${admin}/ready`).catch(() => undefined))?.status === 503, '/ready to answer 503');
    expect(await exited).toBe(0);
    idle.destroy();
    expect(isAlive(pid1)).toBe(false);
  } finally {
    outer.kill('SIGKILL');
    await exited;
  }
});
