/**
 * What the listen engine's request path needs from the rest of Fulcrum, built
 * once per config (a reload builds a new one; exchanges in flight keep theirs).
 */
import type { KeySource, ResolvedConfig } from "../../config/schema.ts";
import type { RateLimitVerdict } from "../../decide/rate-limit.ts";
import type { Logger } from "../../runtime/log.ts";
import type { Pool } from "../../runtime/pool.ts";
import type { EdgeStats } from "../../runtime/outcomes.ts";
import type { Strategy } from "../../types.ts";
import type { SlotQueue } from "../queue.ts";
import type { RetryBudget } from "../retry-budget.ts";
import type { Upstreams } from "./upstream.ts";

/** The balancer's own endpoints (`/lb-*`): undefined when the path is not one of them. */
export type OwnEndpoints = (req: Request, path: string) => Response | Promise<Response> | undefined;

export interface ListenContext {
  readonly pool: Pool;
  readonly strategy: Strategy;
  readonly proxy: ResolvedConfig["proxy"];
  readonly log: Logger;
  readonly tls: boolean;
  /** Seconds for `Retry-After` on a 503. */
  readonly retryAfterSeconds: number;
  /** Whether a peer's X-Forwarded-* headers are believed (`proxy.trustProxy`). */
  readonly isTrusted: (ip: string) => boolean;
  /** The client address to believe, given the TCP peer and the X-Forwarded-For it sent. */
  readonly clientIp: (peerIp: string, forwardedFor: string | null) => string;
  /** Called when no backend is available; resolves true once one is (scale from zero). */
  readonly coldStart: (() => Promise<boolean>) | undefined;
  readonly rateLimit: { readonly key: KeySource; check(key: string): RateLimitVerdict | Promise<RateLimitVerdict> } | undefined;
  /** Served on this port (undefined when `admin.port` takes them). */
  readonly own: OwnEndpoints | undefined;
  readonly upstreams: Upstreams;
  readonly newRequestId: () => string;
  /** The process's edge counters for /lb-metrics. */
  readonly stats: EdgeStats;
  /** Requests waiting for a backend slot (kept across reloads). */
  readonly queue: SlotQueue;
  /** Retries in flight, and the retries waiting for room (kept across reloads). */
  readonly retryBudget: RetryBudget;
}
