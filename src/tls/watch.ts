// Tells the certificate store when to look at its files again. An atomic rename and the
// Kubernetes secret swap (`..data` re-pointed to a new timestamped directory) both replace a
// directory entry, not the file a watch on the file would follow, so the directories are
// watched. fs.watch misses events on some filesystems (NFS, overlay, some container mounts),
// so a stat poll runs as well; it is also what retries a pair caught half-written.
import { watch, type FSWatcher } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/** How often the files are stat'ed whatever fs.watch says. */
export const POLL_MS = 1_000;
/** Events come in bursts (a rename is two, a swap three or more): one look after the last. */
const SETTLE_MS = 25;

export interface WatchOptions {
  /** Called on every poll tick (`poll` true) and after a burst of directory events. */
  check: (poll: boolean) => void;
  pollMs?: number;
  /** false: the poll alone, as on a filesystem whose events never come. */
  events?: boolean;
}

export class DirWatch {
  private watchers: FSWatcher[] = [];
  private poll: NodeJS.Timeout;
  private settle: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(files: string[], private opts: WatchOptions) {
    if (opts.events !== false) for (const dir of new Set(files.map((f) => dirname(resolve(f))))) this.watchDir(dir);
    this.poll = setInterval(() => opts.check(true), opts.pollMs ?? POLL_MS).unref();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.poll);
    clearTimeout(this.settle);
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }

  private watchDir(dir: string): void {
    let w: FSWatcher;
    try {
      w = watch(dir, { persistent: false }, () => this.soon());
    } catch {
      return; // no inotify (limit reached, a filesystem without it): the poll alone serves
    }
    // An error (the directory removed, the watch revoked) ends this watch, not the process.
    w.on('error', () => w.close());
    w.unref();
    this.watchers.push(w);
  }

  private soon(): void {
    if (this.closed) return;
    clearTimeout(this.settle);
    this.settle = setTimeout(() => this.opts.check(false), SETTLE_MS).unref();
  }
}

/**
 * What identifies the file's content now without reading it: the resolved path (a symlink
 * swap changes it) and that file's inode, size and mtime. An error's code stands for a file
 * that cannot be stat'ed, so its coming back is a change too.
 */
export async function signature(file: string): Promise<string> {
  try {
    const [real, s] = await Promise.all([realpath(file), stat(file, { bigint: true })]);
    return `${real}|${s.dev}:${s.ino}|${s.size}|${s.mtimeNs}|${s.ctimeNs}`;
  } catch (err) {
    return `error:${(err as NodeJS.ErrnoException).code ?? String(err)}`;
  }
}
