/**
 * When to restart an instance that exited on its own, PM2-style: exponential
 * backoff (×1.5 from `initialDelay` up to `maxDelay`), reset once an instance
 * has stayed healthy for `stableAfter`; after `maxRestarts` quick deaths in a
 * row the slot is marked failed instead of restarting forever. Pure.
 */

export interface RestartPolicy {
  readonly initialDelay: number;
  readonly maxDelay: number;
  /** Healthy for this long means the crash streak is over. */
  readonly stableAfter: number;
  readonly maxRestarts: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = { initialDelay: 100, maxDelay: 15_000, stableAfter: 30_000, maxRestarts: 10 };

export interface CrashStreak {
  /** Quick deaths in a row. */
  readonly crashes: number;
  /** Delay before the next restart. */
  readonly nextDelay: number;
}

export const NO_CRASHES: CrashStreak = { crashes: 0, nextDelay: 0 };

export type AfterExit =
  | { readonly kind: "restart"; readonly delay: number; readonly streak: CrashStreak }
  | { readonly kind: "failed"; readonly streak: CrashStreak };

/** `healthyFor`: how long the instance had been healthy when it exited (0 if never). */
export function afterExit(streak: CrashStreak, healthyFor: number, policy: RestartPolicy): AfterExit {
  const base = healthyFor >= policy.stableAfter ? NO_CRASHES : streak;
  const crashes = base.crashes + 1;
  if (crashes > policy.maxRestarts) return { kind: "failed", streak: { crashes, nextDelay: base.nextDelay } };
  const delay = base.crashes === 0 ? policy.initialDelay : Math.min(policy.maxDelay, Math.round(base.nextDelay * 1.5));
  return { kind: "restart", delay, streak: { crashes, nextDelay: delay } };
}
