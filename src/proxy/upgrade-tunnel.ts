// WebSocket upgrades, for both http engines: a raw pipe to the backend, which answers the
// handshake itself. A refused or reset connect is tried again (nothing was sent yet).
import net from 'node:net';
import { STATUS_CODES } from 'node:http';
import type { Target } from '../ipc.js';
import type { AccessEntry } from './access-line.js';
import type { AccessLog } from './access-log.js';
import type { Inflight } from './inflight.js';
import type { Router } from './router.js';
import { isRefused, MAX_ATTEMPTS, statusFor } from './failure.js';
import type { Tunnels } from './tunnels.js';

export interface TunnelContext {
  router: Router;
  inflight: Inflight;
  tunnels: Tunnels;
  queueTimeoutMs: number;
  accessLog: AccessLog | null;
}

/**
 * `sendHead` writes the handshake request (and any bytes read after it) to the new upstream.
 * `entry`: the handshake's access-log line, written when the tunnel closes (or when the proxy
 * answers instead): the status is the backend's answer to the handshake, the bytes what it
 * sent after that answer's head.
 */
export function openUpgradeTunnel(ctx: TunnelContext, client: net.Socket, sendHead: (upstream: net.Socket) => void,
  entry: AccessEntry | null, attempt = 1): void {
  const record = (status: number, bytes: number, cut?: 'client' | 'backend'): void => {
    if (entry === null || ctx.accessLog === null) return;
    entry.status = status;
    entry.bytes = bytes;
    entry.cut = cut;
    ctx.accessLog.record(entry);
  };
  const answer = (status: number): void => {
    record(status, 0);
    client.end(proxyAnswer(status));
  };
  const go = (target: Target): void => {
    if (client.destroyed) { record(0, 0, 'client'); return; }
    ctx.inflight.inc(target.gen);
    if (entry !== null) { entry.gen = target.gen; entry.pid = target.pid; entry.tries++; }
    const upstream = net.connect(target.address);
    upstream.once('error', (err) => {
      ctx.inflight.dec(target.gen);
      if (isRefused(err)) ctx.router.markDown(target, 'refused');
      if (attempt < MAX_ATTEMPTS && !client.destroyed) return openUpgradeTunnel(ctx, client, sendHead, entry, attempt + 1);
      answer(502);
    });
    upstream.once('connect', () => {
      upstream.removeAllListeners('error');
      sendHead(upstream);
      if (entry === null) { ctx.tunnels.open(target.gen, client, upstream); return; }
      let status = 0;
      let head = 0;
      ctx.tunnels.open(target.gen, client, upstream, false, (clientFirst) => {
        record(status, Math.max(0, upstream.bytesRead - head), status === 0 ? (clientFirst ? 'client' : 'backend') : undefined);
      });
      upstream.once('data', (d: Buffer) => {
        entry.ttfb = process.hrtime.bigint();
        status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(d.toString('latin1', 0, 16))?.[1] ?? 0);
        // The head of the answer nearly always comes in one piece; if not, what came of it counts.
        const end = d.indexOf('\r\n\r\n');
        head = end === -1 ? d.length : end + 4;
      });
    });
  };
  const t = ctx.router.pick();
  if (t) return go(t);
  ctx.router.wait(ctx.queueTimeoutMs).then(go, (err) => answer(statusFor(err)));
}

function proxyAnswer(status: number): string {
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`;
}
