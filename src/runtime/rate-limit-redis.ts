/**
 * Rate-limit state in Redis (`rateLimit.store: "redis"`, URL from
 * `cluster.redis` / `REDIS_URL`): every Fulcrum process and host using the same
 * Redis shares one count per key. The GCRA step of decide/rate-limit.ts runs as
 * one Lua script, atomic in Redis, on Redis's clock (hosts' clocks may differ).
 * When Redis cannot answer, requests pass (fail open, like Envoy's global rate
 * limit by default): a broken limiter must not take the site down. That is logged.
 */
import { RedisClient } from "bun";
import type { RateLimitVerdict } from "../decide/rate-limit.ts";
import { emissionInterval } from "../decide/rate-limit.ts";
import type { Logger } from "./log.ts";
import type { RateLimitSettings, RateLimiter } from "./rate-limit.ts";

/** Same arithmetic as `admit()`: returns 0 when allowed, else ms until allowed. */
const GCRA_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local wait = tat - now - (burst - 1) * interval
if wait > 0 then return math.ceil(wait) end
local nextTat = tat + interval
redis.call('SET', KEYS[1], string.format('%.3f', nextTat), 'PX', math.ceil(nextTat - now) + 1)
return 0
`;

const KEY_PREFIX = "fulcrum:ratelimit:";
/** A Redis slower than this counts as down for that request. */
const COMMAND_TIMEOUT_MS = 500;
const WARN_EVERY_MS = 10_000;
const ALLOW: RateLimitVerdict = { allowed: true, tat: 0, retryAfterMs: 0 };

export class RedisRateLimiter implements RateLimiter {
  readonly #client: RedisClient;
  readonly #args: [string, string];
  readonly #log: Logger;
  /** The first connection; requests that arrive before it wait for it (bounded) rather than pass unlimited. */
  readonly #firstConnect: Promise<void>;
  #lastWarning = -Infinity;

  constructor(url: string, settings: RateLimitSettings, log: Logger) {
    // No offline queue: while Redis is away, commands fail at once and requests pass, instead of queueing.
    this.#client = new RedisClient(url, { enableOfflineQueue: false, autoReconnect: true, connectionTimeout: 2000 });
    this.#args = [String(emissionInterval(settings.requestsPerSecond)), String(settings.burst)];
    this.#log = log;
    this.#firstConnect = this.#client.connect().catch(() => {});
  }

  async check(key: string): Promise<RateLimitVerdict> {
    try {
      if (!this.#client.connected) await withTimeout(this.#firstConnect, COMMAND_TIMEOUT_MS);
      const reply = await withTimeout(this.#client.send("EVAL", [GCRA_SCRIPT, "1", KEY_PREFIX + key, ...this.#args]), COMMAND_TIMEOUT_MS);
      const waitMs = Number(reply);
      return waitMs > 0 ? { allowed: false, tat: 0, retryAfterMs: waitMs } : ALLOW;
    } catch (error) {
      const now = performance.now();
      if (now - this.#lastWarning >= WARN_EVERY_MS) {
        this.#lastWarning = now;
        this.#log.warn(`rate limit store (redis) unavailable, requests pass unlimited: ${error instanceof Error ? error.message : String(error)}`);
      }
      return ALLOW;
    }
  }

  close(): void {
    this.#client.close();
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: Timer | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
