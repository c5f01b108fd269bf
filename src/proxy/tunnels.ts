// Long-lived byte pipes (tcp-mode connections, WebSockets), grouped by generation so a drain
// can wait for them and a deadline can cut them.
import type { Socket } from 'node:net';
import type { Inflight } from './inflight.js';
import { canSplice, splice } from '../internals/index.js';

export class Tunnels {
  private byGen = new Map<number, Set<Socket>>();

  constructor(private inflight: Inflight) {}

  /**
   * Joins client and upstream: bytes both ways, half-close respected, one close ends both.
   * The caller counted the tunnel in flight when it picked the target (so a drain cannot
   * finish between the pick and the connect); the count is released here when it closes.
   * `fast`: both are fresh, paused TCP sockets owned by nobody else (tcp mode), so their
   * handles can be joined directly instead of piped. `onClose` hears which side closed first.
   */
  open(gen: number, client: Socket, upstream: Socket, fast = false, onClose?: (clientFirst: boolean) => void): void {
    let set = this.byGen.get(gen);
    if (!set) this.byGen.set(gen, (set = new Set()));
    set.add(client);
    let closed = false;
    const close = (clientFirst: boolean): void => {
      if (closed) return;
      closed = true;
      client.destroy();
      upstream.destroy();
      set!.delete(client);
      if (set!.size === 0) this.byGen.delete(gen);
      this.inflight.dec(gen);
      onClose?.(clientFirst);
    };
    const byClient = (): void => close(true);
    const byUpstream = (): void => close(false);
    client.on('error', byClient).on('close', byClient);
    upstream.on('error', byUpstream).on('close', byUpstream);
    // Closed while the upstream was connecting: its 'close' may have come and gone already.
    if (client.destroyed || upstream.destroyed) return close(client.destroyed);
    if (fast && canSplice(client, upstream)) return splice(client, upstream);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  get size(): number {
    let n = 0;
    for (const set of this.byGen.values()) n += set.size;
    return n;
  }

  cut(gen: number): void {
    for (const s of this.byGen.get(gen) ?? []) s.destroy();
  }

  cutAll(): void {
    for (const gen of [...this.byGen.keys()]) this.cut(gen);
  }
}
