/**
 * Active health: consecutive probe results move a backend between healthy and
 * unhealthy with hysteresis (`rise` successes to come back, `fall` failures to
 * go), as HAProxy's `rise`/`fall` do. Pure.
 */

export interface ProbeStreak {
  readonly healthy: boolean;
  /** Consecutive successes (when unhealthy) or failures (when healthy) so far. */
  readonly count: number;
}

export interface RiseFall {
  readonly rise: number;
  readonly fall: number;
}

/** The result of one probe: `ok` means a 2xx/3xx answer within the timeout. */
export function nextHealth(prev: ProbeStreak, ok: boolean, cfg: RiseFall): ProbeStreak {
  if (ok === prev.healthy) return prev.count === 0 ? prev : { healthy: prev.healthy, count: 0 };
  const count = prev.count + 1;
  const needed = prev.healthy ? cfg.fall : cfg.rise;
  return count >= needed ? { healthy: !prev.healthy, count: 0 } : { healthy: prev.healthy, count };
}

/** A probe answer counts as success for 2xx and 3xx, as the SPEC defines healthy. */
export function isHealthyStatus(status: number): boolean {
  return status >= 200 && status < 400;
}
