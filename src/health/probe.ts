// One health probe attempt. A TCP connect proves nothing here: the inherited socket listens
// before the app has even started, so http mode asks the app itself.
import { spawn } from 'node:child_process';
import http from 'node:http';
import { formatAddress, isPath, type Address } from '../address.js';

export type ProbeResult = { ok: true } | { ok: false; reason: string };

export function httpProbe(address: Address, path: string, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const req = http.request({
      ...(isPath(address) ? { socketPath: address.path } : { host: address.host, port: address.port }),
      path,
      method: 'GET',
      agent: false,
      headers: { host: 'localhost', 'user-agent': 'hotproxy-health', connection: 'close' },
      timeout: timeoutMs,
    });
    req.once('response', (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      resolve(status < 500 ? { ok: true } : { ok: false, reason: `GET ${path} answered ${status}` });
    });
    req.once('timeout', () => req.destroy(new Error(`GET ${path} got no answer within ${timeoutMs} ms`)));
    req.once('error', (err) => resolve({ ok: false, reason: err.message }));
    req.end();
  });
}

/** `--health-cmd`: exit status 0 = healthy. The backend's address and pid are in its environment. */
export function commandProbe(cmd: string, env: Record<string, string>, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', cmd], { stdio: 'ignore', env: { ...process.env, ...env } });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => { clearTimeout(timer); resolve({ ok: false, reason: err.message }); });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code === 0 ? { ok: true } : { ok: false, reason: `health command ${signal ? `killed by ${signal}` : `exited with ${code}`}` });
    });
  });
}

export function probeEnv(address: Address, pid: number, gen: number): Record<string, string> {
  return {
    HOTPROXY_BACKEND_ADDRESS: formatAddress(address),
    HOTPROXY_BACKEND_PID: String(pid),
    HOTPROXY_GENERATION: String(gen),
  };
}
