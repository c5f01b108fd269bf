// A worker's engines as one: the plain listeners' (raw, node or tcp) and, with --listen-tls,
// the TLS engine. Both route with the same router and count in the same in-flight table;
// connections handed over are plain ones.
import type { CertPair } from '../ipc.js';
import type { Engine, HandOff } from './engine.js';
import type { TlsEngine } from './tls/engine.js';

export class Engines implements Engine {
  private all: Engine[];

  constructor(private plain: Engine, private tls: TlsEngine | undefined) {
    this.all = tls === undefined ? [plain] : [plain, tls];
  }

  async listen(fd: number): Promise<void> {
    await this.plain.listen(fd);
  }

  async listenTls(fd: number): Promise<void> {
    await this.tls!.listen(fd);
  }

  setCerts(pairs: CertPair[]): void {
    this.tls?.setCerts(pairs);
  }

  forget(alive: Set<string>, gen: number | null): void {
    for (const e of this.all) e.forget(alive, gen);
  }

  async drain(gen: number): Promise<void> {
    await Promise.all(this.all.map((e) => e.drain(gen)));
  }

  cut(gen: number): void {
    for (const e of this.all) e.cut(gen);
  }

  adopt(handle: unknown): void {
    this.plain.adopt(handle);
  }

  async retire(timeoutMs: number, handOff: HandOff): Promise<void> {
    await Promise.all(this.all.map((e) => e.retire(timeoutMs, handOff)));
  }

  async connections(): Promise<number> {
    const n = await Promise.all(this.all.map((e) => e.connections()));
    return n.reduce((a, b) => a + b, 0);
  }

  idleConnections(): number {
    return this.all.reduce((n, e) => n + (e.idleConnections?.() ?? 0), 0);
  }

  async stop(timeoutMs: number): Promise<void> {
    await Promise.all(this.all.map((e) => e.stop(timeoutMs)));
  }
}
