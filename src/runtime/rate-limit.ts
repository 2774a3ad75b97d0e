/**
 * Where rate-limit state lives. `memory`: a map in this process (with
 * `cluster.workers` > 1 each process counts on its own). `redis`: one count
 * shared by every process and host using the same Redis (rate-limit-redis.ts).
 */
import { admit, emissionInterval, type RateLimitVerdict } from "../decide/rate-limit.ts";

export interface RateLimitSettings {
  readonly requestsPerSecond: number;
  readonly burst: number;
}

export interface RateLimiter {
  /** Counts one request under `key` and says whether it may pass. */
  check(key: string): RateLimitVerdict | Promise<RateLimitVerdict>;
  close(): void;
}

/** Keys beyond this are evicted oldest first (a fresh bucket is lenient, never wrong-way strict). */
const MAX_KEYS = 100_000;
const SWEEP_EVERY_MS = 10_000;

export class MemoryRateLimiter implements RateLimiter {
  readonly #interval: number;
  readonly #burst: number;
  readonly #tats = new Map<string, number>();
  readonly #maxKeys: number;
  readonly #sweeper: Timer;

  constructor(settings: RateLimitSettings, maxKeys = MAX_KEYS) {
    this.#interval = emissionInterval(settings.requestsPerSecond);
    this.#burst = settings.burst;
    this.#maxKeys = maxKeys;
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_EVERY_MS);
    this.#sweeper.unref();
  }

  check(key: string): RateLimitVerdict {
    const now = performance.now();
    const verdict = admit(this.#tats.get(key), now, this.#interval, this.#burst);
    if (verdict.allowed) {
      if (this.#tats.size >= this.#maxKeys && !this.#tats.has(key)) this.#makeRoom(now);
      this.#tats.set(key, verdict.tat);
    }
    return verdict;
  }

  /** Keys tracked now (for tests and status). */
  get size(): number {
    return this.#tats.size;
  }

  close(): void {
    clearInterval(this.#sweeper);
  }

  /** A TAT in the past means "full bucket", the same as no entry: forget it. */
  #sweep(now = performance.now()): void {
    for (const [key, tat] of this.#tats) if (tat <= now) this.#tats.delete(key);
  }

  #makeRoom(now: number): void {
    this.#sweep(now);
    let excess = this.#tats.size - Math.floor(this.#maxKeys * 0.9);
    for (const key of this.#tats.keys()) {
      if (excess-- <= 0) break;
      this.#tats.delete(key);
    }
  }
}
