/**
 * Slow start, HAProxy's `slowstart` idea: a freshly started instance gets a
 * share of the traffic it would otherwise get that grows linearly from 10% to
 * 100% over the slow-start period, so a cold process (JIT, caches, pools) is
 * not flooded the moment it passes its first health check. Pure.
 */
export function warmupShare(msUntilWarm: number, slowStart: number): number {
  if (slowStart <= 0 || msUntilWarm <= 0) return 1;
  return Math.max(0.1, 1 - msUntilWarm / slowStart);
}
