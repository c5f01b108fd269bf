// WebSocket upgrades, for both http engines: a raw pipe to the backend, which answers the
// handshake itself. A refused or reset connect is tried again (nothing was sent yet).
import net from 'node:net';
import { STATUS_CODES } from 'node:http';
import type { Target } from '../ipc.js';
import type { Inflight } from './inflight.js';
import type { Router } from './router.js';
import { isRefused, MAX_ATTEMPTS, statusFor } from './failure.js';
import type { Tunnels } from './tunnels.js';

export interface TunnelContext {
  router: Router;
  inflight: Inflight;
  tunnels: Tunnels;
  queueTimeoutMs: number;
}

/** `sendHead` writes the handshake request (and any bytes read after it) to the new upstream. */
export function openUpgradeTunnel(ctx: TunnelContext, client: net.Socket, sendHead: (upstream: net.Socket) => void, attempt = 1): void {
  const go = (target: Target): void => {
    if (client.destroyed) return;
    ctx.inflight.inc(target.gen);
    const upstream = net.connect(target.address);
    upstream.once('error', (err) => {
      ctx.inflight.dec(target.gen);
      if (isRefused(err)) ctx.router.markDown(target, 'refused');
      if (attempt < MAX_ATTEMPTS && !client.destroyed) return openUpgradeTunnel(ctx, client, sendHead, attempt + 1);
      client.end(proxyAnswer(502));
    });
    upstream.once('connect', () => {
      upstream.removeAllListeners('error');
      sendHead(upstream);
      ctx.tunnels.open(target.gen, client, upstream);
    });
  };
  const t = ctx.router.pick();
  if (t) return go(t);
  ctx.router.wait(ctx.queueTimeoutMs).then(go, (err) => client.end(proxyAnswer(statusFor(err))));
}

function proxyAnswer(status: number): string {
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`;
}
