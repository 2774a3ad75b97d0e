import type { BackendView } from "../types.ts";

/**
 * Response-time EWMAs are never exactly equal, so "tie → lower EWMA → round
 * robin" needs a band: within 30% (or 5 ms) of each other two backends count as
 * equally fast. Without it the fastest idle backend would take every request at
 * low load, its rivals' EWMAs would never be refreshed, and one slow first
 * request (connection setup, a cold JIT) would decide the routing for long.
 */
function similarLatency(a: number, b: number): boolean {
  return Math.abs(a - b) <= Math.max(5, 0.3 * Math.min(a, b));
}

/**
 * An EWMA of fewer responses than this mostly measures connection setup and
 * a cold JIT, not the backend: until both have this many, latency breaks no tie.
 */
const TRUSTED_SAMPLES = 10;

/**
 * Negative when `a` is the better choice: fewer requests in flight, then a
 * clearly lower response-time EWMA. Zero means "as good": the caller's order decides.
 */
export function compareLoad(a: BackendView, b: BackendView): number {
  if (a.inflight !== b.inflight) return a.inflight - b.inflight;
  if (a.totalRequests < TRUSTED_SAMPLES || b.totalRequests < TRUSTED_SAMPLES) return 0;
  if (similarLatency(a.responseTimeMs, b.responseTimeMs)) return 0;
  return a.responseTimeMs - b.responseTimeMs;
}
