// Certificate files replaced the ways deploy tools replace them: an atomic rename per file
// (certbot, most config managers), and the Kubernetes secret volume's symlink swap, where both
// files change at once when `..data` is re-pointed to a new timestamped directory.
import { copyFileSync, mkdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MadeCert } from './tls.js';

let n = 0;

/** Writes `text` next to `file` and renames it over `file`, as an atomic replacement does. */
export function renameOver(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}-${n++}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** Replaces a pair's files by rename, the cert first, then the key. */
export function renamePair(files: { cert: string; key: string }, made: MadeCert): void {
  renameOver(files.cert, readFileSync(made.cert, 'utf8'));
  renameOver(files.key, readFileSync(made.key, 'utf8'));
}

/**
 * A secret volume as the kubelet lays it out in `dir`: `tls.crt -> ..data/tls.crt`,
 * `tls.key -> ..data/tls.key`, `..data -> ..<stamp>` holding the files.
 */
export function secretVolume(dir: string, made: MadeCert): { cert: string; key: string } {
  mkdirSync(dir, { recursive: true });
  const stamp = fillStamp(dir, made);
  symlinkSync(stamp, join(dir, '..data'));
  symlinkSync('..data/tls.crt', join(dir, 'tls.crt'));
  symlinkSync('..data/tls.key', join(dir, 'tls.key'));
  return { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') };
}

/** The kubelet's update: a new timestamped directory, `..data` swapped to it by rename, the old one removed. */
export function swapSecret(dir: string, made: MadeCert): void {
  const old = readlinkSync(join(dir, '..data'));
  const stamp = fillStamp(dir, made);
  symlinkSync(stamp, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  rmSync(join(dir, old), { recursive: true, force: true });
}

function fillStamp(dir: string, made: MadeCert): string {
  const stamp = `..${new Date().toISOString().replace(/[-:.]/g, '_')}_${n++}`;
  mkdirSync(join(dir, stamp));
  copyFileSync(made.cert, join(dir, stamp, 'tls.crt'));
  copyFileSync(made.key, join(dir, stamp, 'tls.key'));
  return stamp;
}
