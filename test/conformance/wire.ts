// The conformance client: HTTP/1.x on a plain socket, so it can send what libraries will not
// (HTTP/1.0, pipelining, request trailers, a body written slowly) and read strictly what comes
// back. It never retries and never reconnects: a reset, a stall or a malformed answer is an
// error in the answer, counted by the caller.
import { createHash, type Hash } from 'node:crypto';
import net from 'node:net';
import { block, bytes } from './bytes.js';

export type Field = [string, string];

export interface Upload {
  size: number;
  seed: number;
  /** Chunked with this chunk size; absent: Content-Length. */
  chunk?: number;
  trailers?: Field[];
}

export interface Request {
  method: string;
  target: string;
  headers?: Field[];
  body?: Upload;
  version?: '1.0' | '1.1';
  /** Send the head with `Expect: 100-continue` and the body only after 100 (or not at all). */
  expect100?: boolean;
  /** Write the request `piece` bytes at a time, `gapMs` apart. */
  slowWrite?: { piece: number; gapMs: number };
  /** Pause reading for `gapMs` after every chunk received. */
  slowReadMs?: number;
}

export interface Answer {
  status: number;
  reason: string;
  headers: Field[];
  info: { status: number; headers: Field[] }[];
  trailers: Field[];
  bodyLength: number;
  bodyHash: string;
  /** Hash of every byte of the answer as received, Date values masked (tcp mode: byte-exact). */
  wireHash: string;
  /** ms from the request's last byte written to the first body byte received (-1: none). */
  firstBodyMs: number;
  /** The server announced or performed a close after this answer. */
  closes: boolean;
  error?: string;
}

export const HOST = 'conformance.test';

/** Deterministic upload bytes (the backend's generator, another block). */
const BLOCK: Buffer = block(0x2545f491);
export const uploadBytes = (size: number, seed: number, piece: number): Generator<Buffer> => bytes(BLOCK, size, seed, piece, 104729);

function head(r: Request): string {
  let h = `${r.method} ${r.target} HTTP/${r.version ?? '1.1'}\r\nhost: ${HOST}\r\n`;
  for (const [k, v] of r.headers ?? []) h += `${k}: ${v}\r\n`;
  if (r.body) {
    h += r.body.chunk ? 'transfer-encoding: chunked\r\n' : `content-length: ${r.body.size}\r\n`;
    if (r.body.trailers?.length) h += `trailer: ${r.body.trailers.map(([k]) => k).join(', ')}\r\n`;
  }
  if (r.expect100) h += 'expect: 100-continue\r\n';
  return `${h}\r\n`;
}

/** The body as wire pieces (chunk framing included). */
function* bodyPieces(b: Upload): Generator<Buffer | string> {
  if (!b.chunk) { yield* uploadBytes(b.size, b.seed, 64 * 1024); return; }
  for (const c of uploadBytes(b.size, b.seed, b.chunk)) {
    yield `${c.length.toString(16)}\r\n`;
    yield c;
    yield '\r\n';
  }
  let last = '0\r\n';
  for (const [k, v] of b.trailers ?? []) last += `${k}: ${v}\r\n`;
  yield `${last}\r\n`;
}

const HEAD_LIMIT = 256 * 1024;
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/;
const FIELD = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*$/;
const CHUNK_SIZE = /^([0-9a-fA-F]{1,15})(;.*)?$/;

type State = 'head' | 'length' | 'size' | 'data' | 'crlf' | 'trailers' | 'eof' | 'done';

/** Parses one answer (1xx responses first) off the byte stream; strict about framing. */
class AnswerParser {
  a: Answer = { status: 0, reason: '', headers: [], info: [], trailers: [], bodyLength: 0, bodyHash: '', wireHash: '', firstBodyMs: -1, closes: false };
  state: State = 'head';
  private left = 0;
  private body: Hash = createHash('sha256');
  private wire: Hash = createHash('sha256');
  sentAt = 0;

  constructor(private isHead: boolean, private onInfo: (status: number) => void) {}

  /** Consumes what it can of `buf`; returns the bytes it did not need. */
  feed(buf: Buffer): Buffer {
    while (buf.length > 0 && this.state !== 'done') {
      if (this.state === 'head' || this.state === 'trailers') {
        const end = this.state === 'trailers' && buf[0] === 13 && buf[1] === 10 ? 0 : buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (buf.length > HEAD_LIMIT) throw new Error('head too large');
          return buf;
        }
        const text = buf.subarray(0, end).toString('latin1');
        const used = this.state === 'trailers' && end === 0 ? 2 : end + 4;
        this.wire.update(text.replace(/^(date:).*$/gim, '$1 *'), 'latin1');
        this.wire.update('\r\n\r\n');
        buf = buf.subarray(used);
        if (this.state === 'head') this.onHead(text);
        else { this.a.trailers = end === 0 ? [] : fields(text.split('\r\n')); this.finish(); }
        continue;
      }
      if (this.state === 'length' || this.state === 'data' || this.state === 'eof') {
        const n = this.state === 'eof' ? buf.length : Math.min(this.left, buf.length);
        this.bodyBytes(buf.subarray(0, n));
        buf = buf.subarray(n);
        this.left -= n;
        if (this.left === 0 && this.state === 'length') this.finish();
        else if (this.left === 0 && this.state === 'data') this.state = 'crlf';
        continue;
      }
      if (this.state === 'crlf') {
        if (buf.length < 2) return buf;
        if (buf[0] !== 13 || buf[1] !== 10) throw new Error('chunk data not followed by CRLF');
        this.wire.update(buf.subarray(0, 2));
        buf = buf.subarray(2);
        this.state = 'size';
        continue;
      }
      // size
      const eol = buf.indexOf('\r\n');
      if (eol < 0) {
        if (buf.length > 1024) throw new Error('chunk size line too long');
        return buf;
      }
      const line = buf.subarray(0, eol).toString('latin1');
      const m = CHUNK_SIZE.exec(line);
      if (!m) throw new Error(`bad chunk size line ${JSON.stringify(line)}`);
      this.wire.update(buf.subarray(0, eol + 2));
      buf = buf.subarray(eol + 2);
      this.left = parseInt(m[1]!, 16);
      this.state = this.left === 0 ? 'trailers' : 'data';
    }
    return buf;
  }

  private onHead(text: string): void {
    const lines = text.split('\r\n');
    const m = STATUS_LINE.exec(lines[0]!);
    if (!m) throw new Error(`bad status line ${JSON.stringify(lines[0])}`);
    const status = Number(m[1]);
    const hdrs = fields(lines.slice(1));
    if (status < 200) {
      this.a.info.push({ status, headers: hdrs });
      this.onInfo(status);
      return; // the next head follows
    }
    this.a.status = status;
    this.a.reason = m[2] ?? '';
    this.a.headers = hdrs;
    const get = (k: string): string[] => hdrs.filter(([n]) => n === k).map(([, v]) => v);
    const conn = get('connection').join(',').toLowerCase();
    this.a.closes = /(^|,)\s*close\s*(,|$)/.test(conn) || (lines[0]!.startsWith('HTTP/1.0') && !/keep-alive/.test(conn));
    const te = get('transfer-encoding');
    const cl = get('content-length');
    if (te.length && cl.length) throw new Error('both Transfer-Encoding and Content-Length');
    if (new Set(cl).size > 1) throw new Error('conflicting Content-Length values');
    if (this.isHead || status === 204 || status === 304) { this.finish(); return; }
    if (te.length) {
      if (!/(^|,)\s*chunked\s*$/i.test(te.join(','))) throw new Error(`unsupported transfer-encoding ${te.join(',')}`);
      this.state = 'size';
    } else if (cl.length) {
      if (!/^\d+$/.test(cl[0]!)) throw new Error(`bad content-length ${cl[0]}`);
      this.left = Number(cl[0]);
      if (this.left === 0) this.finish(); else this.state = 'length';
    } else {
      this.state = 'eof';
      this.a.closes = true;
    }
  }

  private bodyBytes(b: Buffer): void {
    if (b.length === 0) return;
    if (this.a.firstBodyMs < 0) this.a.firstBodyMs = Date.now() - this.sentAt;
    this.a.bodyLength += b.length;
    this.body.update(b);
    this.wire.update(b);
  }

  /** The connection ended: completes a close-delimited body, else it was cut. */
  end(): void {
    if (this.state === 'eof') { this.finish(); return; }
    if (this.state !== 'done') throw new Error(`connection closed in state ${this.state} after ${this.a.bodyLength} body bytes`);
  }

  private finish(): void {
    this.state = 'done';
    this.a.bodyHash = this.body.digest('hex').slice(0, 32);
    this.a.wireHash = this.wire.digest('hex').slice(0, 32);
  }
}

/** Until `s` drains or closes (neither listener left behind). */
export function drained(s: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const go = (): void => { s.off('drain', go); s.off('close', go); resolve(); };
    s.on('drain', go).on('close', go);
  });
}

function fields(lines: string[]): Field[] {
  return lines.filter((l) => l !== '').map((l) => {
    const m = FIELD.exec(l);
    if (!m) throw new Error(`bad header line ${JSON.stringify(l)}`);
    return [m[1]!.toLowerCase(), m[2]!] as Field;
  });
}

/** One client connection. Requests go out in order; answers are matched to them in order. */
export class Conn {
  private sock: net.Socket;
  private rest: Buffer = Buffer.alloc(0);
  private queue: { parser: AnswerParser; resolve: (a: Answer) => void; onInfo?: (s: number) => void }[] = [];
  private ended = false;
  private failure: string | undefined;
  readonly ready: Promise<void>;
  private slowReadMs = 0;
  port0 = 0;
  private writing: Promise<void> = Promise.resolve();
  /** A request on it was left without its body: the connection cannot carry another. */
  private spoiled = false;

  /** `connect`: the way to the server over TLS (`ready` when the handshake is done). */
  constructor(port: number, private timeoutMs = 20_000, connect?: (port: number) => net.Socket) {
    this.sock = connect ? connect(port) : net.connect(port, '127.0.0.1');
    this.sock.setNoDelay(true);
    const up = connect ? 'secureConnect' : 'connect';
    this.ready = new Promise((resolve, reject) => this.sock.once(up, resolve).once('error', reject));
    this.sock.once(up, () => (this.port0 = this.sock.localPort!));
    this.sock.on('data', (d: Buffer) => this.onData(d));
    this.sock.on('end', () => this.onEnd());
    this.sock.on('error', (err) => this.fail(`${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`));
    this.sock.on('close', () => this.onEnd());
  }

  get closed(): boolean {
    return this.ended || this.spoiled || this.sock.destroyed;
  }

  /** Sends `r` and resolves with its answer; several calls without awaiting pipeline them. */
  send(r: Request): Promise<Answer> {
    const parser = new AnswerParser(r.method === 'HEAD', (s) => entry.onInfo?.(s));
    const entry: { parser: AnswerParser; resolve: (a: Answer) => void; onInfo?: (s: number) => void } = { parser, resolve: () => {} };
    const answered = new Promise<Answer>((resolve) => (entry.resolve = resolve));
    this.queue.push(entry);
    if (r.slowReadMs) this.slowReadMs = r.slowReadMs;
    const timer = setTimeout(() => this.fail(`no complete answer within ${this.timeoutMs} ms (state ${parser.state}, ${parser.a.bodyLength} body bytes)`), this.timeoutMs);
    // Pipelined requests are written one after the other, never interleaved.
    this.writing = this.writing.then(() => this.write(r, entry, answered));
    return answered.finally(() => clearTimeout(timer));
  }

  private async write(r: Request, entry: { parser: AnswerParser; onInfo?: (s: number) => void }, answered: Promise<Answer>): Promise<void> {
    const h = head(r);
    if (r.expect100 && r.body) {
      // The body goes only after 100; a final answer first means it is not wanted.
      const wanted = Promise.race([
        new Promise<boolean>((resolve) => (entry.onInfo = (s) => s === 100 && resolve(true))),
        answered.then(() => false),
      ]);
      await this.out([h], r.slowWrite);
      const go = await wanted;
      if (!go) { this.spoiled = true; return; }
      await this.out(bodyPieces(r.body), r.slowWrite);
    } else {
      await this.out(r.body ? [h, ...bodyPieces(r.body)] : [h], r.slowWrite);
    }
    entry.parser.sentAt = Date.now();
  }

  private async out(pieces: Iterable<Buffer | string>, slow?: { piece: number; gapMs: number }): Promise<void> {
    for (const p of pieces) {
      if (this.closed) return;
      if (!slow) {
        if (!(typeof p === 'string' ? this.sock.write(p, 'latin1') : this.sock.write(p))) await drained(this.sock);
        continue;
      }
      const b = typeof p === 'string' ? Buffer.from(p, 'latin1') : p;
      for (let i = 0; i < b.length; i += slow.piece) {
        if (this.closed) return;
        this.sock.write(b.subarray(i, i + slow.piece));
        await new Promise((r) => setTimeout(r, slow.gapMs));
      }
    }
  }

  private onData(d: Buffer): void {
    let buf = this.rest.length ? Buffer.concat([this.rest, d]) : d;
    try {
      while (buf.length > 0 && this.queue.length > 0) {
        const e = this.queue[0]!;
        buf = e.parser.feed(buf);
        if (e.parser.state !== 'done') break;
        this.queue.shift();
        e.resolve(e.parser.a);
      }
      if (buf.length > 0 && this.queue.length === 0) throw new Error(`${buf.length} bytes nobody asked for`);
    } catch (err) {
      this.fail((err as Error).message);
      return;
    }
    this.rest = buf;
    if (this.slowReadMs > 0) {
      this.sock.pause();
      setTimeout(() => this.sock.resume(), this.slowReadMs);
    }
  }

  private onEnd(): void {
    if (this.ended) return;
    this.ended = true;
    const e = this.queue[0];
    if (e) {
      try {
        e.parser.end();
        this.queue.shift();
        e.resolve(e.parser.a);
      } catch (err) {
        this.fail((err as Error).message);
      }
    }
    this.fail('connection closed before the answer');
  }

  private fail(why: string): void {
    this.failure ??= why;
    for (const e of this.queue.splice(0)) e.resolve({ ...e.parser.a, error: `${why} [port ${this.port0} at ${Date.now()}]` });
    this.sock.destroy();
  }

  close(): void {
    this.sock.destroy();
  }
}
