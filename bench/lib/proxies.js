// HAProxy and nginx as reference points, each with a minimal config in a temp dir, one worker
// (like hotproxy's default single proxy worker) and keep-alive to the backend, so the
// comparison is proxy against proxy rather than configuration against configuration.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Proc, descendants, freePort, waitForPort, which } from '../../harness/procs.js';

/** A started reference proxy: its port, every pid that does proxy work, and stop(). */
class External {
  constructor(proc, port, dir, scheme = 'http') { Object.assign(this, { proc, port, dir, scheme }); }
  get url() { return `${this.scheme}://127.0.0.1:${this.port}`; }
  get proxyPids() { return [this.proc.pid, ...descendants(this.proc.pid).map((d) => d.pid)]; }
  async stop() {
    await this.proc.stop(10_000);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function tempDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotproxy-bench-'));
  // nginx workers drop to an unprivileged user when started as root and must reach the dir.
  fs.chmodSync(dir, 0o755);
  return dir;
}

async function launch(bin, args, port, dir, name, scheme) {
  const proc = new Proc(bin, args, { name, cwd: dir });
  try {
    await waitForPort(port, 10_000, proc);
  } catch (err) {
    await proc.stop(2_000);
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return new External(proc, port, dir, scheme);
}

/** Returns undefined-or-reason: why this target cannot run here. */
export function haproxyMissing() {
  return which('haproxy') ? undefined : 'haproxy not installed';
}

export async function startHaproxy(mode, backendPort) {
  const port = await freePort();
  const dir = tempDir();
  // HAProxy 2.x keeps client and server connections alive in http mode by default.
  const cfg = `global
  nbthread 1
defaults
  mode ${mode}
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  server s1 127.0.0.1:${backendPort}
`;
  const file = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(file, cfg);
  return launch(which('haproxy'), ['-f', file, '-db'], port, dir, 'haproxy');
}

/**
 * HAProxy terminating TLS in http mode: the same frontend and backend as startHaproxy('http'),
 * with `cert`/`key` (PEM file paths) combined into the one file HAProxy reads, ALPN h2 and
 * http/1.1 like hotproxy's TLS listener, TLS 1.2 and 1.3 (HAProxy's default minimum is 1.2).
 * Its `url` is https://.
 */
export async function startHaproxyTls(backendPort, { cert, key }) {
  const port = await freePort();
  const dir = tempDir();
  const pem = path.join(dir, 'site.pem');
  fs.writeFileSync(pem, `${fs.readFileSync(cert, 'utf8').trimEnd()}\n${fs.readFileSync(key, 'utf8')}`, { mode: 0o600 });
  const cfg = `global
  nbthread 1
  ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:${port} ssl crt ${pem} alpn h2,http/1.1
  default_backend be
backend be
  server s1 127.0.0.1:${backendPort}
`;
  const file = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(file, cfg);
  return launch(which('haproxy'), ['-f', file, '-db'], port, dir, 'haproxy', 'https');
}

/** { line } to enable the stream module ('' when built in), or null when it is unavailable. */
let stream;
function nginxStream(bin) {
  if (stream !== undefined) return stream;
  // nginx -V prints its build options on stderr.
  const r = spawnSync(bin, ['-V'], { encoding: 'utf8' });
  const info = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (/--with-stream(\s|$)/.test(info)) return (stream = { line: '' });
  const modules = /--modules-path=(\S+)/.exec(info)?.[1] ?? '/usr/lib/nginx/modules';
  const so = path.join(modules, 'ngx_stream_module.so');
  return (stream = fs.existsSync(so) ? { line: `load_module ${so};` } : null);
}

export function nginxMissing(mode) {
  const bin = which('nginx');
  if (!bin) return 'nginx not installed';
  if (mode === 'tcp' && !nginxStream(bin)) return 'nginx stream module not available';
  return undefined;
}

export async function startNginx(mode, backendPort) {
  const bin = which('nginx');
  const port = await freePort();
  const dir = tempDir();
  const head = `${mode === 'tcp' ? nginxStream(bin).line : ''}
worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
`;
  // keepalive + HTTP/1.1 + empty Connection header: without them nginx opens a new backend
  // connection per request, which would measure a misconfiguration.
  const http = `http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream be { server 127.0.0.1:${backendPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`;
  const stream = `stream {
  upstream be { server 127.0.0.1:${backendPort}; }
  server { listen 127.0.0.1:${port}; proxy_pass be; }
}
`;
  const file = path.join(dir, 'nginx.conf');
  fs.writeFileSync(file, head + (mode === 'tcp' ? stream : http));
  return launch(bin, ['-p', `${dir}/`, '-c', file, '-g', 'daemon off;'], port, dir, 'nginx');
}
