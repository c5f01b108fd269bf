// The access log: one JSON line per client request, from each proxy worker, to stdout or to a
// file every worker opens O_APPEND. Lines gather for one event-loop turn and go out in one
// write of whole lines, so the lines of several workers never interleave: appends to a regular
// file are atomic per write, and on a pipe so are writes of up to PIPE_BUF bytes, which is all
// a stdout batch may hold. Writes are asynchronous: a slow or failing disk holds up log lines,
// never requests, and a line that cannot be written is dropped and counted, not retried forever.
import fs from 'node:fs';
import type { Logger } from '../log.js';
import { ACCESS_LOG_REOPEN_FAILED, ACCESS_LOG_REOPENED, ACCESS_LOG_WRITE_FAILED } from '../messages.js';
import { waitUntil } from './wait-until.js';

/** The --access-log value that means the worker's stdout (which it inherits from the master). */
export const STDOUT = 'stdout';

/** Who ended a request before its answer was complete. */
export type Cut = 'client' | 'backend';

/** What a line says of one request; the engines fill it in as the exchange goes. */
export interface AccessEntry {
  method: string;
  /** The request target as the client sent it. */
  url: string;
  /** The status sent to the client; 0: none was. */
  status: number;
  /** Body bytes sent to the client. */
  bytes: number;
  /** process.hrtime.bigint() at the request's start, and at the first byte of the backend's answer (0n: none came). */
  t0: bigint;
  ttfb: bigint;
  /** The generation and pid of the instance the request last went to; 0: none. */
  gen: number;
  pid: number;
  /** How often the request was sent to a backend. */
  tries: number;
  client: string;
  requestId: string;
  userAgent: string | undefined;
  /** Set when the answer was not complete. */
  cut: Cut | undefined;
}

// On a pipe, PIPE_BUF (4096 on Linux) bytes go in one piece; a UTF-16 unit is at most 3 bytes.
const PIPE_BATCH = 1365;
const FILE_BATCH = 256 << 10;
/** Characters held while the disk is slow; lines beyond are dropped (and counted). */
const MAX_PENDING = 16 << 20;
/** A full non-blocking pipe (stdout): how long to wait before writing again. */
const EAGAIN_RETRY_MS = 10;
/** With no file open (it could not be opened), how often to try again. */
const OPEN_RETRY_MS = 1_000;

const BACKLOG = Object.assign(new Error(`more than ${MAX_PENDING} characters of lines wait for the disk`), { code: 'EBACKLOG' });

const ms = (ns: bigint): number => Math.round(Number(ns) / 1e3) / 1e3;

// toISOString costs more than the rest of a line together; its first 20 characters change once a second.
let isoSecond = NaN;
let isoPrefix = '';
function iso(t: number): string {
  const s = Math.floor(t / 1000);
  if (s !== isoSecond) { isoSecond = s; isoPrefix = new Date(s * 1000).toISOString().slice(0, 20); }
  const m = t - s * 1000;
  return `${isoPrefix}${m < 10 ? '00' : m < 100 ? '0' : ''}${m}Z`;
}

/** One line, ending in a newline. `end`: hrtime now; `now`: Date.now(). */
export function formatLine(e: AccessEntry, end: bigint, now: number): string {
  const duration = ms(end - e.t0);
  // Method and address come from fixed tables (llhttp's methods, the kernel's address); the
  // rest is as the client or a trusted proxy sent it, so it is escaped.
  let line = `{"time":"${iso(Math.round(now - duration))}","method":"${e.method}","target":${JSON.stringify(e.url)}`
    + `,"status":${e.status},"bytes":${e.bytes},"durationMs":${duration},"ttfbMs":${e.ttfb === 0n ? null : ms(e.ttfb - e.t0)}`
    + `,"gen":${e.gen || null},"instance":${e.pid || null},"attempts":${e.tries},"client":${e.client ? `"${e.client}"` : null}`
    + `,"requestId":${JSON.stringify(e.requestId)},"userAgent":${e.userAgent === undefined ? null : JSON.stringify(e.userAgent)}`;
  if (e.cut !== undefined) line += `,"cut":"${e.cut}"`;
  return `${line}}\n`;
}

export class AccessLog {
  private lines: string[] = [];
  private pending = 0;
  /** The unwritten end of a write that went out in part. */
  private rest: Buffer | null = null;
  private writing = false;
  private scheduled = false;
  private reopenWanted = false;
  private lastOpen = 0;
  /** The error of the current run of failed writes, if one is going on. */
  private failing: string | undefined;
  private dropped = 0;
  private closed = false;

  private constructor(readonly path: string, private fd: number | null, private log: Logger) {}

  /**
   * The worker's access log. A file that cannot be opened (the master checked it at start,
   * but it may have gone since) is logged and tried again later: requests are served anyway.
   */
  static open(path: string, log: Logger): AccessLog {
    if (path === STDOUT) return new AccessLog(path, 1, log);
    const al = new AccessLog(path, null, log);
    al.lastOpen = Date.now();
    try {
      al.fd = fs.openSync(path, 'a');
    } catch (err) {
      al.failed(err as NodeJS.ErrnoException, 0);
    }
    return al;
  }

  /** Writes `e`'s line (soon, with the others of this turn). */
  record(e: AccessEntry): void {
    if (this.closed) return;
    if (this.pending > MAX_PENDING) { this.failed(BACKLOG, 1); return; }
    const line = formatLine(e, process.hrtime.bigint(), Date.now());
    this.lines.push(line);
    this.pending += line.length;
    this.schedule();
  }

  /** SIGUSR1: the file was moved away (logrotate); what follows goes to a new one by the name. */
  reopen(): void {
    if (this.path === STDOUT || this.closed) return;
    this.reopenWanted = true;
    this.schedule();
  }

  /** Writes what is left (waiting at most `timeoutMs`) and closes the file. */
  async close(timeoutMs = 2_000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await waitUntil(() => !this.writing && !this.scheduled && this.rest === null && this.lines.length === 0, timeoutMs);
    if (this.fd !== null && this.fd !== 1) fs.closeSync(this.fd);
  }

  private schedule(): void {
    if (this.writing || this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  private flush = (): void => {
    this.scheduled = false;
    if (this.writing) return;
    // A part-written batch belongs to the file it began in.
    if (this.rest === null) {
      if (this.fd === null && Date.now() - this.lastOpen >= OPEN_RETRY_MS) this.reopenWanted = true;
      if (this.reopenWanted) { this.reopenNow(); return; }
    }
    if (this.fd === null) { this.dropAll(); return; }
    const buf = this.rest ?? this.take();
    if (buf === null) return;
    this.rest = null;
    this.writing = true;
    fs.write(this.fd, buf, 0, buf.length, null, (err, n) => this.written(buf, err, n));
  };

  /** The next batch of whole lines, or null when there is none. */
  private take(): Buffer | null {
    const lines = this.lines;
    if (lines.length === 0) return null;
    const limit = this.fd === 1 ? PIPE_BATCH : FILE_BATCH;
    let n = 0;
    let chars = 0;
    while (n < lines.length && (n === 0 || chars + lines[n]!.length <= limit)) chars += lines[n++]!.length;
    const batch = n === lines.length ? lines : lines.splice(0, n);
    if (batch === lines) this.lines = [];
    this.pending -= chars;
    return Buffer.from(batch.join(''));
  }

  private written(buf: Buffer, err: NodeJS.ErrnoException | null, n: number): void {
    this.writing = false;
    if (err !== null) {
      if (err.code === 'EAGAIN') {
        this.rest = buf;
        this.scheduled = true;
        setTimeout(this.flush, EAGAIN_RETRY_MS);
        return;
      }
      this.failed(err, countLines(buf));
    } else {
      if (n < buf.length) this.rest = buf.subarray(n);
      if (this.failing !== undefined) {
        this.log.info({ path: this.path, dropped: this.dropped }, 'Access log writes again');
        this.failing = undefined;
        this.dropped = 0;
      }
    }
    this.schedule();
  }

  private reopenNow(): void {
    this.reopenWanted = false;
    this.writing = true;
    this.lastOpen = Date.now();
    fs.open(this.path, 'a', (err, fd) => {
      this.writing = false;
      if (err !== null) {
        // With no file open, this is one more failure of a run already logged. Otherwise the
        // old file stays: its lines are not lost, only in the rotated file.
        if (this.fd === null) this.failed(err, 0);
        else this.log.error({ path: this.path, err: err.message, code: err.code }, ACCESS_LOG_REOPEN_FAILED);
      } else {
        const old = this.fd;
        this.fd = fd;
        if (old !== null && old !== 1) fs.close(old, () => {});
        this.log.info({ path: this.path }, ACCESS_LOG_REOPENED);
      }
      this.schedule();
    });
  }

  private dropAll(): void {
    this.dropped += this.lines.length;
    this.lines = [];
    this.pending = 0;
  }

  /** One line in the log per run of failures, however long it lasts; its lines are dropped. */
  private failed(err: NodeJS.ErrnoException, lines: number): void {
    this.dropped += lines;
    if (this.failing !== undefined) return;
    this.failing = err.code ?? err.message;
    this.log.error({ path: this.path, err: err.message, code: err.code }, ACCESS_LOG_WRITE_FAILED);
  }
}

function countLines(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) n++;
  return n;
}
