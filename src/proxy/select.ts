/**
 * Which backend one attempt of a request goes to, for HTTP and WebSocket alike:
 *
 * 1. the strategy's pick among available backends this request has not tried;
 * 2. when there is none: its pick among backends that active probes call
 *    healthy but passive checks ejected (not tried either). An ejected backend
 *    is a better bet than none: it is kept out of rotation because of recent
 *    failures, not because it is known to be down (Envoy spreads over every
 *    host in the same spirit when too few are left, its panic mode);
 * 3. for a retry only (the request already failed elsewhere): its pick among
 *    backends that probes call unhealthy. A probe that ran just before a
 *    restarted backend came back marks it down for a whole interval; when the
 *    other backend dies in that interval, this is the one that answers. A
 *    first attempt never goes there: with nothing healthy it gets a 503;
 * 4. none at all: undefined. Only then does the client hear "no backend"
 *    (503 when nothing was tried, 502 when every backend tried failed).
 *
 * In panic mode (`panic`: fewer than `proxy.panicThreshold` of the live
 * backends are available, see Pool.panic) step 1 picks among every live
 * backend, unhealthy and ejected ones included: Envoy's panic threshold, which
 * spreads the load rather than crushing the few backends left.
 *
 * A retry never goes back to a backend that already failed this request, and
 * no pick lands on a backend at its `maxConnections` (`limited`: some backend
 * has one); when that leaves nothing, the request waits for a slot
 * (`waitForSlot`, proxy/queue.ts).
 */
import { pickEligible } from "../strategies/eligible.ts";
import type { BackendView, PickContext, Strategy } from "../types.ts";

export function selectBackend<B extends BackendView>(
  strategy: Strategy,
  pool: readonly B[],
  ctx: PickContext,
  tried: readonly B[] | undefined,
  limited = false,
  panic = false,
): B | undefined {
  const free = (b: B) => !limited || b.slots === 0 || b.inflight < b.slots;
  if (panic) {
    const any = pickEligible(strategy, pool, ctx, (b) => (b.state === "healthy" || b.state === "unhealthy") && free(b) && !tried?.includes(b));
    if (any) return any;
  }
  const chosen =
    tried || limited ? pickEligible(strategy, pool, ctx, (b) => b.available && free(b) && !tried?.includes(b)) : (strategy.pick(pool, ctx) as B | undefined);
  if (chosen) return chosen;
  const ejected = pickEligible(strategy, pool, ctx, (b) => b.state === "healthy" && free(b) && !tried?.includes(b));
  if (ejected || !tried || tried.length === 0) return ejected;
  return pickEligible(strategy, pool, ctx, (b) => b.state === "unhealthy" && free(b) && !tried.includes(b));
}

/** Nothing could be picked only because backends that would take the request are at their limit: it may wait for a slot. */
export function waitForSlot(pool: readonly BackendView[], tried: readonly BackendView[] | undefined): boolean {
  return pool.some((b) => b.state === "healthy" && b.slots > 0 && b.inflight >= b.slots && !tried?.includes(b));
}
