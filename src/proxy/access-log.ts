// The access log writer: each proxy worker's lines go to stdout or to a file every worker opens
// O_APPEND. Lines are encoded at once into chunks of whole lines, and a chunk goes out in one
// write, so the lines of several workers never interleave: appends to a regular file are
// atomic per write, and on a pipe so are writes of up to PIPE_BUF bytes, the most a stdout
// chunk holds. Writes are asynchronous: a slow or failing disk holds up log lines, never
// requests, and a line that cannot be written is dropped and counted, not retried forever.
import fs from 'node:fs';
import type { Logger } from '../log.js';
import { ACCESS_LOG_REOPEN_FAILED, ACCESS_LOG_REOPENED, ACCESS_LOG_WRITE_FAILED } from '../messages.js';
import { formatLine, type AccessEntry } from './access-line.js';
import { waitUntil } from './wait-until.js';

/** The --access-log value that means the worker's stdout (which it inherits from the master). */
export const STDOUT = 'stdout';

// Measured under load: a write per event-loop turn (a line or two, each a trip through libuv's
// thread pool) cost 15 µs a request, and lines kept as strings until written cost 3 µs more
// than the same bytes encoded at once (they outlive a scavenge). So lines are bytes in a chunk
// that is written when full, or at the latest after FLUSH_MS.
const FLUSH_MS = 100;
const FILE_CHUNK = 64 << 10;
/** PIPE_BUF on Linux: a write this size or smaller goes into a pipe in one piece. */
const PIPE_CHUNK = 4096;
/** Bytes of full chunks held while the disk is slow; lines beyond are dropped (and counted). */
const MAX_QUEUED = 16 << 20;
/** A full non-blocking pipe (stdout): how long to wait before writing again. */
const EAGAIN_RETRY_MS = 10;
/** With no file open (it could not be opened), how often to try again. */
const OPEN_RETRY_MS = 1_000;

const BACKLOG = Object.assign(new Error(`more than ${MAX_QUEUED} bytes of lines wait for the disk`), { code: 'EBACKLOG' });

export class AccessLog {
  private readonly size: number;
  /** The chunk lines are added to, and how much of it is used. */
  private chunk: Buffer;
  private used = 0;
  /** Full chunks (whole lines each), oldest first, and their bytes. */
  private queue: Buffer[] = [];
  private queued = 0;
  /** Written chunks, for reuse. */
  private spare: Buffer[] = [];
  /** The unwritten end of a chunk that went out in part. */
  private rest: Buffer | null = null;
  private writing = false;
  private timer: NodeJS.Timeout | undefined;
  private immediate = false;
  /** A full pipe said EAGAIN: the timer tries again, not every new line. */
  private blocked = false;
  private reopenWanted = false;
  /** Chunks at the front of the queue from before a reopen was asked for: they go to the old file. */
  private owed = 0;
  private lastOpen = 0;
  /** The error of the current run of failed writes, if one is going on. */
  private failing: string | undefined;
  private dropped = 0;
  private closed = false;

  private constructor(readonly path: string, private fd: number | null, private log: Logger) {
    this.size = fd === 1 ? PIPE_CHUNK : FILE_CHUNK;
    this.chunk = Buffer.allocUnsafe(this.size);
  }

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

  /** Writes `e`'s line (soon, with others). */
  record(e: AccessEntry): void {
    if (this.closed) return;
    if (this.queued > MAX_QUEUED) { this.failed(BACKLOG, 1); return; }
    const line = formatLine(e, process.hrtime.bigint(), Date.now());
    // A UTF-16 unit is at most 3 bytes of UTF-8: room for that, or the chunk is sealed first.
    if (this.used + line.length * 3 > this.size) {
      this.seal();
      if (line.length * 3 > this.size) { this.push(Buffer.from(line)); this.schedule(); return; }
    }
    this.used += this.chunk.write(line, this.used, 'utf8');
    this.schedule();
  }

  /** SIGUSR1: the file was moved away (logrotate); what follows goes to a new one by the name. */
  reopen(): void {
    if (this.path === STDOUT || this.closed) return;
    if (!this.reopenWanted) { this.seal(); this.owed = this.queue.length; }
    this.reopenWanted = true;
    this.schedule();
  }

  /** Writes what is left (waiting at most `timeoutMs`) and closes the file. */
  async close(timeoutMs = 2_000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.seal();
    this.schedule();
    // Held: a worker that is exiting has little else keeping its loop alive, and an unref'd
    // poll would let the process end before the last write is known done.
    await waitUntil(() => this.idle(), timeoutMs, { hold: true, everyMs: 5 });
    if (this.fd !== null && this.fd !== 1) fs.closeSync(this.fd);
  }

  private idle(): boolean {
    return !this.writing && !this.immediate && this.timer === undefined && this.rest === null && this.queue.length === 0;
  }

  /** The current chunk joins the queue (if it holds anything) and a fresh one takes its place. */
  private seal(): void {
    if (this.used === 0) return;
    this.push(this.chunk.subarray(0, this.used));
    this.chunk = this.spare.pop() ?? Buffer.allocUnsafe(this.size);
    this.used = 0;
  }

  private push(b: Buffer): void {
    this.queue.push(b);
    this.queued += b.length;
  }

  /** A flush now when a chunk is full (or a reopen, or the end), else in FLUSH_MS. */
  private schedule(): void {
    if (this.writing || this.blocked) return; // written() and the EAGAIN timer come back here
    if (this.queue.length > 0 || this.rest !== null || this.reopenWanted) {
      if (this.timer !== undefined) { clearTimeout(this.timer); this.timer = undefined; }
      if (!this.immediate) { this.immediate = true; setImmediate(this.flush); }
    } else if (this.timer === undefined && !this.immediate && this.used > 0) {
      this.timer = setTimeout(this.flush, FLUSH_MS).unref();
    }
  }

  private flush = (): void => {
    this.immediate = false;
    this.blocked = false;
    if (this.timer !== undefined) { clearTimeout(this.timer); this.timer = undefined; }
    if (this.writing) return;
    // A part-written chunk, and chunks from before the reopen, belong to the file they began in.
    if (this.rest === null && this.owed === 0) {
      if (this.fd === null && Date.now() - this.lastOpen >= OPEN_RETRY_MS) this.reopenWanted = true;
      if (this.reopenWanted) { this.reopenNow(); return; }
    }
    if (this.rest === null && this.queue.length === 0) this.seal(); // FLUSH_MS passed
    if (this.fd === null) { this.dropAll(); return; }
    const buf = this.rest ?? this.queue.shift();
    if (buf === undefined) return;
    if (this.rest === null) {
      this.queued -= buf.length;
      if (this.owed > 0) this.owed--;
    }
    this.rest = null;
    this.writing = true;
    fs.write(this.fd, buf, 0, buf.length, null, (err, n) => this.written(buf, err, n));
  };

  private written(buf: Buffer, err: NodeJS.ErrnoException | null, n: number): void {
    this.writing = false;
    if (err !== null) {
      if (err.code === 'EAGAIN') {
        this.rest = buf;
        this.blocked = true;
        this.timer = setTimeout(this.flush, EAGAIN_RETRY_MS).unref();
        return;
      }
      this.failed(err, countLines(buf));
    } else if (n < buf.length) {
      this.rest = buf.subarray(n);
    } else if (this.failing !== undefined) {
      this.log.info({ path: this.path, dropped: this.dropped }, 'Access log writes again');
      this.failing = undefined;
      this.dropped = 0;
    }
    if (this.rest === null) this.reuse(buf);
    this.schedule();
  }

  private reuse(buf: Buffer): void {
    // A chunk's slice shares the chunk's memory, which it has to itself (not Buffer's pool).
    if (buf.buffer.byteLength === this.size && buf.byteOffset === 0 && this.spare.length < 2) this.spare.push(Buffer.from(buf.buffer, 0, this.size));
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
    this.seal();
    for (const b of this.queue) { this.dropped += countLines(b); this.reuse(b); }
    this.queue = [];
    this.queued = 0;
    this.owed = 0;
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
