// A raw TCP client for tests that must send what no HTTP library would (broken framing,
// one byte at a time) and see exactly what comes back, including how the connection ends.
import net from 'node:net';
import { rssKiB } from './procs.js';
import { waitFor } from './wait.js';

export class RawClient {
  text = '';
  received = 0;
  closed = false;
  /** When the connection closed (Date.now()), 0 while open. */
  closedAt = 0;

  private constructor(readonly sock: net.Socket, keepText: boolean) {
    sock.on('data', (d: Buffer) => {
      this.received += d.length;
      if (keepText) this.text += d.toString('latin1');
    });
    sock.on('close', () => { this.closed = true; this.closedAt = Date.now(); });
    sock.on('error', () => {});
  }

  /** `keepText: false` for large bodies: only the byte count is kept. */
  static async open(port: number, keepText = true): Promise<RawClient> {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise((resolve, reject) => sock.once('connect', resolve).once('error', reject));
    return new RawClient(sock, keepText);
  }

  send(data: string | Buffer): this {
    this.sock.write(data);
    return this;
  }

  /** Resolves once `pred(text)` holds or the connection closed; returns the text. */
  async until(pred: (text: string) => boolean, what = 'the response', timeoutMs = 15_000): Promise<string> {
    await waitFor(() => this.closed || pred(this.text), what, timeoutMs);
    return this.text;
  }

  /** How many responses with `status` arrived so far. */
  count(status: number): number {
    return this.text.split(`HTTP/1.1 ${status} `).length - 1;
  }

  close(): void {
    this.sock.destroy();
  }
}

/** Sends `data` on a new connection and returns what came back once `done` holds or it closed. */
export async function exchange(port: number, data: string, done: (text: string) => boolean = () => false): Promise<RawClient> {
  const c = await RawClient.open(port);
  c.send(data);
  await c.until(done);
  c.close();
  return c;
}

/** VmRSS of a process in MiB. */
export async function rssMiB(pid: number): Promise<number> {
  return rssKiB(pid) / 1024;
}
