// Deterministic body bytes for both sides of the conformance run (plain JS: the backend runs
// without a build). A fixed pseudo-random block, entered at an offset chosen by `seed`.

/** A 1 MiB xorshift block from `start`. */
export function block(start) {
  const b = Buffer.allocUnsafe(1 << 20);
  let x = start;
  for (let i = 0; i < b.length; i += 4) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  return b;
}

/** `size` bytes of `b` from an offset set by `seed` (times `stride`), `piece` bytes at a time. */
export function* bytes(b, size, seed, piece, stride) {
  let off = (seed * stride) % b.length;
  let left = size;
  while (left > 0) {
    const n = Math.min(left, piece, b.length - off);
    yield b.subarray(off, off + n);
    left -= n;
    off = (off + n) % b.length;
  }
}
