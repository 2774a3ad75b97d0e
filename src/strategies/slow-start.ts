/**
 * Slow start, HAProxy's `slowstart` idea, as a wrapper around any strategy: a
 * freshly started instance (its `warmUntil` in the future) takes part in a pick
 * with a probability that grows linearly from 10% to 100% over the slow-start
 * period, so a cold process (JIT, caches, pools) is not flooded the moment it
 * passes its first health check. The inner strategy is called once per pick,
 * on the same positions (strategies/eligible.ts), so the warm backends keep
 * even shares among themselves. Among warming backends only there is nothing
 * to protect: when no warm backend is available, none is held back.
 *
 * Under saturation the share is one of load, not only of picks: a warming
 * backend is never held back while it has fewer requests in flight than its
 * share of the least busy warm backend's. Instances a panic scale-up just
 * started are the ones slow start meets most, and holding them back by chance
 * alone left the old instances queueing 20 deep for the whole period (the
 * autoscaling bench's high-phase p99) while the new ones sat idle.
 */
import type { BackendView, Strategy } from "../types.ts";
import { pickEligible } from "./eligible.ts";

export interface SlowStartOptions {
  /** The slow-start period, ms. */
  readonly periodMs: number;
  /** Wall clock, ms since the epoch (what `warmUntil` is in). */
  readonly now: () => number;
  /** [0, 1). */
  readonly random: () => number;
}

/** Share of its normal traffic a backend gets `msUntilWarm` before the end of its slow start. Pure. */
export function warmupShare(msUntilWarm: number, periodMs: number): number {
  if (periodMs <= 0 || msUntilWarm <= 0) return 1;
  return Math.max(0.1, 1 - msUntilWarm / periodMs);
}

export function withSlowStart(inner: Strategy, options: SlowStartOptions): Strategy {
  const { periodMs, now, random } = options;
  return {
    name: inner.name,
    pick(pool, ctx) {
      let t = 0;
      let warming = 0;
      let warm = 0;
      let warmInflight = Number.POSITIVE_INFINITY;
      for (const backend of pool) {
        if (!backend.available) continue;
        if (backend.warmUntil !== 0) t ||= now();
        if (backend.warmUntil > t) warming++;
        else {
          warm++;
          warmInflight = Math.min(warmInflight, backend.inflight);
        }
      }
      if (warming === 0 || warm === 0) return inner.pick(pool, ctx);
      const held = new Set<BackendView>();
      for (const backend of pool) {
        if (!backend.available || backend.warmUntil <= t) continue;
        const share = warmupShare(backend.warmUntil - t, periodMs);
        if (backend.inflight >= share * warmInflight && random() >= share) held.add(backend);
      }
      if (held.size === 0) return inner.pick(pool, ctx);
      return pickEligible(inner, pool, ctx, (backend) => backend.available && !held.has(backend));
    },
  };
}
