// When a certificate is due, and timers that can wait that long: certificates live for months,
// setTimeout for at most 2^31 - 1 ms (~24.8 days), beyond which Node fires it at once.
import { X509Certificate } from 'node:crypto';

/** The longest delay setTimeout takes as given. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface Lifetime {
  notBefore: number;
  notAfter: number;
}

/** The validity of the leaf, the first certificate of a PEM chain (ms since the epoch). */
export function lifetimeOf(certPem: string): Lifetime {
  const x = new X509Certificate(certPem);
  return { notBefore: Date.parse(x.validFrom), notAfter: Date.parse(x.validTo) };
}

/** Renewal at two thirds of the lifetime, as Let's Encrypt advises: a third is left for retries. */
export function renewAt({ notBefore, notAfter }: Lifetime): number {
  return notBefore + Math.floor(((notAfter - notBefore) * 2) / 3);
}

/** Whether a certificate of this lifetime should be ordered again at `now`. */
export function isDue(l: Lifetime, now = Date.now()): boolean {
  return now >= renewAt(l);
}

/**
 * Calls `fn` at the time `at` (ms since the epoch), however far off, by chaining timers of at
 * most MAX_TIMER_MS. Unref'd: a pending renewal never keeps the process alive. Returns a cancel.
 */
export function runAt(at: number, fn: () => void, now: () => number = Date.now): () => void {
  let timer: NodeJS.Timeout | undefined;
  let cancelled = false;
  const arm = (): void => {
    const left = Math.max(0, at - now());
    timer = setTimeout(() => {
      if (cancelled) return;
      if (at - now() > 0) arm();
      else fn();
    }, Math.min(left, MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  return () => {
    cancelled = true;
    clearTimeout(timer);
  };
}

/**
 * When to order after obtaining a certificate: at renewAt, but never sooner than a third of its
 * lifetime (at most an hour) from now, so that a clock skewed against the CA's cannot make a
 * loop of back-to-back orders.
 */
export function nextRenewal(l: Lifetime, now = Date.now()): number {
  return Math.max(renewAt(l), now + Math.min(3_600_000, Math.floor((l.notAfter - l.notBefore) / 3)));
}
