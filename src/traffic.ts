/**
 * The per-config request path: strategy, HTTP proxy and WebSocket upgrade,
 * built from one resolved config. A reload builds a new one; the pool and
 * WebSocket relay handlers stay.
 */
import { cidrContains, parseCidr, parseIp } from "./config/cidr.ts";
import type { KeySource, ResolvedConfig } from "./config/schema.ts";
import { believedClientIp } from "./decide/headers.ts";
import { rateLimitKey, retryAfterSeconds } from "./decide/rate-limit.ts";
import type { Logger } from "./runtime/log.ts";
import type { Pool } from "./runtime/pool.ts";
import { createProxy, type ProxyHandler } from "./runtime/proxy.ts";
import { MemoryRateLimiter, type RateLimiter } from "./runtime/rate-limit.ts";
import { RedisRateLimiter } from "./runtime/rate-limit-redis.ts";
import { Http1Transport } from "./runtime/upstream/http1.ts";
import { fetchTransport, type Transport } from "./runtime/upstream/transport.ts";
import { createWebSocketUpgrade } from "./runtime/websocket.ts";
import { createStrategy } from "./strategies/index.ts";
import type { Strategy } from "./types.ts";

export interface Traffic {
  readonly strategy: Strategy;
  readonly proxy: ProxyHandler;
  /** Releases what this request path holds (its timeout timer); called when a reload replaces it. */
  close(): void;
  readonly upgrade: ReturnType<typeof createWebSocketUpgrade>;
}

export function buildTraffic(
  config: ResolvedConfig,
  pool: Pool,
  log: Logger,
  transport: Transport,
  hooks: { coldStart: (() => Promise<boolean>) | undefined; onUpload: (req: Request) => void; limiter: RateLimiter | undefined },
): Traffic {
  const { coldStart, onUpload, limiter } = hooks;
  const strategy = createStrategy(config.strategy);
  const isTrusted = trustMatcher(config.proxy.trustProxy);
  const clientIp = (peerIp: string, req: Request) =>
    config.proxy.trustProxy === false ? peerIp : believedClientIp(peerIp, req.headers.get("x-forwarded-for"), isTrusted);
  const tls = config.listen.tls !== null;
  const proxy = createProxy({
    pool,
    strategy,
    proxy: config.proxy,
    retryAfterSeconds: Math.max(1, Math.ceil(config.health.interval / 1000)),
    log,
    tls,
    isTrusted,
    clientIp,
    coldStart,
    slowStart: config.instances?.slowStart ?? 0,
    transport,
    onUpload,
  });
  const upgrade = createWebSocketUpgrade({
    pool,
    strategy,
    connectTimeout: config.proxy.connectTimeout,
    preserveHost: config.proxy.preserveHost,
    tls,
    log,
    isTrusted,
    trustProxy: config.proxy.trustProxy !== false,
    clientIp,
    coldStart,
  });
  const limit = config.rateLimit && limiter ? rateLimitGate(limiter, config.rateLimit.key, clientIp, log) : undefined;
  if (!limit) return { strategy, proxy: proxy.handle, upgrade, close: proxy.close };
  return {
    strategy,
    proxy: async (req, peerIp, path) => (await limit(req, peerIp, path)) ?? proxy.handle(req, peerIp, path),
    upgrade: async (req, server, peerIp, path) => (await limit(req, peerIp, path)) ?? upgrade(req, server, peerIp, path),
    close: proxy.close,
  };
}

/** Answers 429 when the request's key is over its rate; undefined lets it through. */
function rateLimitGate(
  limiter: RateLimiter,
  key: KeySource,
  clientIp: (peerIp: string, req: Request) => string,
  log: Logger,
): (req: Request, peerIp: string, path: string) => Promise<Response | undefined> {
  return async (req, peerIp, path) => {
    const verdict = await limiter.check(rateLimitKey(key, clientIp(peerIp, req), (name) => req.headers.get(name)));
    if (verdict.allowed) return undefined;
    if (log.access) log.response(req.method, path, "rate limit", 429, 0);
    return new Response("429 Too Many Requests\n", {
      status: 429,
      headers: { "retry-after": String(retryAfterSeconds(verdict.retryAfterMs)), "content-type": "text/plain" },
    });
  };
}

/** The store `rateLimit` asks for, or none when it is not configured. */
export function createRateLimiter(config: ResolvedConfig, log: Logger): RateLimiter | undefined {
  const limit = config.rateLimit;
  if (!limit) return undefined;
  if (limit.store === "redis" && config.cluster.redis) return new RedisRateLimiter(config.cluster.redis, limit, log);
  return new MemoryRateLimiter(limit);
}

/** Idle upstream connections of the http1 transport close after this (below common 5 s backend keep-alive timeouts). */
const UPSTREAM_IDLE_MS = 4000;

export function createTransport(proxy: ResolvedConfig["proxy"]): Transport {
  return proxy.transport === "http1" ? new Http1Transport({ connectTimeout: proxy.connectTimeout, idleTimeout: UPSTREAM_IDLE_MS }) : fetchTransport;
}

function trustMatcher(trust: boolean | readonly string[]): (ip: string) => boolean {
  if (typeof trust === "boolean") return () => trust;
  const ranges = trust.map((c) => parseCidr(c)).filter((c) => c !== undefined);
  return (ip) => {
    const bytes = parseIp(ip);
    return bytes !== undefined && ranges.some((range) => cidrContains(range, bytes));
  };
}
