/**
 * Rate limiting by GCRA, the generic cell rate algorithm (the leaky bucket as a
 * meter, as in redis-cell and Envoy's local rate limit): one number per key,
 * its theoretical arrival time (TAT). A key may send `burst` requests at once
 * and then one every `1000 / requestsPerSecond` ms. Pure: the stores (memory,
 * Redis) keep the TATs, this decides.
 */
import type { KeySource } from "../config/schema.ts";

export interface RateLimitVerdict {
  readonly allowed: boolean;
  /** The key's new TAT (unchanged when refused: a refused request costs nothing). */
  readonly tat: number;
  /** When refused: how long until one more request would be allowed, ms. */
  readonly retryAfterMs: number;
}

/** Milliseconds between requests at the steady rate. */
export function emissionInterval(requestsPerSecond: number): number {
  return 1000 / requestsPerSecond;
}

/** `tat`: the key's stored TAT, or undefined for a key not seen (or expired). */
export function admit(tat: number | undefined, now: number, intervalMs: number, burst: number): RateLimitVerdict {
  const start = tat === undefined || tat < now ? now : tat;
  // Written so a fresh key computes exactly 0 (start - now is 0), whatever rounding `now` brings.
  const wait = start - now - (burst - 1) * intervalMs;
  if (wait > 0) return { allowed: false, tat: start, retryAfterMs: wait };
  return { allowed: true, tat: start + intervalMs, retryAfterMs: 0 };
}

/** Header values longer than this are stored by hash: a client choosing 8 KiB values must not inflate the store. */
const MAX_KEY_VALUE = 64;

/** What a request is counted under: its client address, or a header's value (the address when it is absent). */
export function rateLimitKey(source: KeySource, clientIp: string, header: (name: string) => string | null): string {
  if (source === "ip") return `ip:${clientIp}`;
  const value = header(source.slice("header:".length));
  if (!value) return `ip:${clientIp}`;
  return value.length > MAX_KEY_VALUE ? `h#${Bun.hash(value).toString(36)}` : `h:${value}`;
}

/** `Retry-After` in whole seconds, at least 1 (HTTP has no finer unit). */
export function retryAfterSeconds(retryAfterMs: number): number {
  return Math.max(1, Math.ceil(retryAfterMs / 1000));
}
