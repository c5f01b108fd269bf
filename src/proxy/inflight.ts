// Counts what each generation has open on this worker (requests in http mode, connections in
// tcp mode and for WebSockets), so a drain can finish the moment the count reaches zero.

export class Inflight {
  private counts = new Map<number, number>();
  private idle = new Map<number, Array<() => void>>();

  inc(gen: number): void {
    this.counts.set(gen, (this.counts.get(gen) ?? 0) + 1);
  }

  dec(gen: number): void {
    const n = (this.counts.get(gen) ?? 1) - 1;
    if (n > 0) { this.counts.set(gen, n); return; }
    this.counts.delete(gen);
    const waiting = this.idle.get(gen);
    if (waiting) { this.idle.delete(gen); for (const f of waiting) f(); }
  }

  byGen(): Record<number, number> {
    return Object.fromEntries(this.counts);
  }

  total(): number {
    let n = 0;
    for (const c of this.counts.values()) n += c;
    return n;
  }

  whenIdle(gen: number): Promise<void> {
    if (!this.counts.has(gen)) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.idle.get(gen) ?? [];
      list.push(resolve);
      this.idle.set(gen, list);
    });
  }

  async whenAllIdle(): Promise<void> {
    while (this.counts.size > 0) await this.whenIdle(this.counts.keys().next().value!);
  }
}
