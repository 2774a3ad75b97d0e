/**
 * The per-config request path, for both engines: the strategy (with slow
 * start), who is trusted, the rate limit, and what each engine needs on top
 * (the serve engine's proxy and WebSocket upgrade, the listen engine's
 * context). A reload builds a new one; the pool, the listen engine's upstream
 * connections and the WebSocket relay handlers stay.
 */
import { cidrContains, parseCidr, parseIp } from "../config/cidr.ts";
import type { KeySource, ResolvedConfig } from "../config/schema.ts";
import { believedClientIp } from "../decide/headers.ts";
import { rateLimitKey, retryAfterSeconds, type RateLimitVerdict } from "../decide/rate-limit.ts";
import type { Logger } from "../runtime/log.ts";
import type { Pool } from "../runtime/pool.ts";
import { MemoryRateLimiter, type RateLimiter } from "../runtime/rate-limit.ts";
import { RedisRateLimiter } from "../runtime/rate-limit-redis.ts";
import { createStrategy } from "../strategies/index.ts";
import { withSlowStart } from "../strategies/slow-start.ts";
import type { EdgeStats } from "../runtime/outcomes.ts";
import type { Strategy } from "../types.ts";
import { failureAsResponse } from "./failures.ts";
import type { ListenContext, OwnEndpoints } from "./listen/context.ts";
import type { Upstreams } from "./listen/upstream.ts";
import type { SlotQueue } from "./queue.ts";
import type { RetryBudget } from "./retry-budget.ts";
import { requestIds } from "./request-id.ts";
import { createProxy, type ProxyHandler } from "./serve/proxy.ts";
import { createWebSocketUpgrade } from "./serve/websocket.ts";

export interface Traffic {
  readonly strategy: Strategy;
  /** The same request path for the listen engine. */
  readonly listen: ListenContext;
  readonly proxy: ProxyHandler;
  /** Releases what this request path holds (its timeout timer); called when a reload replaces it. */
  close(): void;
  readonly upgrade: ReturnType<typeof createWebSocketUpgrade>;
}

export function buildTraffic(
  config: ResolvedConfig,
  pool: Pool,
  log: Logger,
  hooks: {
    coldStart: (() => Promise<boolean>) | undefined;
    limiter: RateLimiter | undefined;
    /** The listen engine's upstream connections (kept across reloads). */
    upstreams: Upstreams;
    /** The balancer's own endpoints when they share the listen port. */
    own: OwnEndpoints | undefined;
    /** The process's edge counters (kept across reloads). */
    stats: EdgeStats;
    /** Requests waiting for a backend slot (kept across reloads). */
    queue: SlotQueue;
    retryBudget: RetryBudget;
  },
): Traffic {
  const { coldStart, limiter, upstreams, own, stats, queue, retryBudget } = hooks;
  const slowStart = config.instances?.slowStart ?? 0;
  const chosen = createStrategy(config.strategy);
  // Only managed instances warm up (static backends never have a `warmUntil`).
  const strategy = slowStart > 0 ? withSlowStart(chosen, { periodMs: slowStart, now: Date.now, random: Math.random }) : chosen;
  const retryAfterSeconds = Math.max(1, Math.ceil(config.health.interval / 1000));
  const isTrusted = trustMatcher(config.proxy.trustProxy);
  const clientIp = (peerIp: string, req: Request) =>
    config.proxy.trustProxy === false ? peerIp : believedClientIp(peerIp, req.headers.get("x-forwarded-for"), isTrusted);
  const tls = config.listen.tls !== null;
  const proxy = createProxy({
    pool,
    strategy,
    proxy: config.proxy,
    retryAfterSeconds,
    log,
    tls,
    isTrusted,
    clientIp,
    coldStart,
    stats,
    queue,
    retryBudget,
  });
  const upgrade = createWebSocketUpgrade({
    pool,
    strategy,
    connectTimeout: config.proxy.connectTimeout,
    retryAfterSeconds,
    preserveHost: config.proxy.preserveHost,
    tls,
    log,
    isTrusted,
    trustProxy: config.proxy.trustProxy !== false,
    clientIp,
    coldStart,
    stats,
  });
  const listen: ListenContext = {
    pool,
    strategy,
    proxy: config.proxy,
    log,
    tls,
    retryAfterSeconds,
    isTrusted,
    clientIp: (peerIp, forwardedFor) => (config.proxy.trustProxy === false ? peerIp : believedClientIp(peerIp, forwardedFor, isTrusted)),
    coldStart,
    rateLimit: config.rateLimit && limiter ? { key: config.rateLimit.key, check: (key) => limiter.check(key) } : undefined,
    own,
    upstreams,
    newRequestId: requestIds(),
    stats,
    queue,
    retryBudget,
  };
  const limit = config.rateLimit && limiter ? rateLimitGate(limiter, config.rateLimit.key, clientIp, log, stats) : undefined;
  if (!limit) return { strategy, listen, proxy: proxy.handle, upgrade, close: proxy.close };
  return {
    strategy,
    listen,
    proxy: (req, peerIp, path, server) => {
      const verdict = limit.check(req, peerIp);
      if (!(verdict instanceof Promise)) return verdict.allowed ? proxy.handle(req, peerIp, path, server) : Promise.resolve(limit.refuse(req, peerIp, path, verdict));
      return verdict.then((v) => (v.allowed ? proxy.handle(req, peerIp, path, server) : limit.refuse(req, peerIp, path, v)));
    },
    upgrade: async (req, server, peerIp, path) => {
      const verdict = await limit.check(req, peerIp);
      return verdict.allowed ? upgrade(req, server, peerIp, path) : limit.refuse(req, peerIp, path, verdict);
    },
    close: proxy.close,
  };
}

/**
 * Counts each request under its key; past the rate, a 429. The memory store
 * answers synchronously, so the common path adds no promise.
 */
function rateLimitGate(limiter: RateLimiter, key: KeySource, clientIp: (peerIp: string, req: Request) => string, log: Logger, stats: EdgeStats) {
  return {
    check: (req: Request, peerIp: string) => limiter.check(rateLimitKey(key, clientIp(peerIp, req), (name) => req.headers.get(name))),
    refuse(req: Request, peerIp: string, path: string, verdict: RateLimitVerdict): Response {
      if (log.access) log.response(req.method, path, "rate limit", 429, 0, { requestId: req.headers.get("x-request-id"), client: clientIp(peerIp, req), bytesIn: null, bytesOut: null });
      return failureAsResponse({ kind: "rate-limited", retryAfterSeconds: retryAfterSeconds(verdict.retryAfterMs) }, stats);
    },
  };
}

/** The store `rateLimit` asks for, or none when it is not configured. */
export function createRateLimiter(config: ResolvedConfig, log: Logger): RateLimiter | undefined {
  const limit = config.rateLimit;
  if (!limit) return undefined;
  if (limit.store === "redis" && config.cluster.redis) return new RedisRateLimiter(config.cluster.redis, limit, log);
  return new MemoryRateLimiter(limit);
}

function trustMatcher(trust: boolean | readonly string[]): (ip: string) => boolean {
  if (typeof trust === "boolean") return () => trust;
  const ranges = trust.map((c) => parseCidr(c)).filter((c) => c !== undefined);
  return (ip) => {
    const bytes = parseIp(ip);
    return bytes !== undefined && ranges.some((range) => cidrContains(range, bytes));
  };
}
