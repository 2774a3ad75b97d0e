/**
 * What a worker's counters grew by between two reports (pure). A worker
 * reports totals since it started; the primary adds only the growth to a
 * backend's `remote` totals, so those never go backwards: not when a worker
 * dies or restarts (its totals start again from 0), and not when the backend
 * is a new member under an old id (a restarted instance), which starts from 0
 * instead of inheriting what a worker counted for its predecessor.
 */
import type { Counters } from "./protocol.ts";

export interface Growth {
  readonly total: number;
  readonly failed: number;
  readonly latencySumMs: number;
  readonly latencyCounts: readonly number[];
  readonly outcomes: readonly number[];
}

/** What a list of totals grew by (all of `now` when it went backwards: the worker counts from 0 again). */
export function listGrowth(before: readonly number[] | undefined, now: readonly number[]): number[] {
  if (!before || now.some((n, i) => n < (before[i] ?? 0))) return [...now];
  return now.map((n, i) => n - (before[i] ?? 0));
}

/** Totals lower than before mean the worker counts from 0 again: all of `now` is new. */
export function counterGrowth(before: Counters | undefined, now: Counters): Growth {
  const [, , total, failed, sumMs, counts, outcomes] = now;
  if (!before || total < before[2]) return { total, failed, latencySumMs: sumMs, latencyCounts: counts, outcomes };
  return {
    total: total - before[2],
    failed: Math.max(0, failed - before[3]),
    latencySumMs: Math.max(0, sumMs - before[4]),
    latencyCounts: counts.map((c, i) => Math.max(0, c - (before[5][i] ?? 0))),
    outcomes: outcomes.map((c, i) => Math.max(0, c - (before[6][i] ?? 0))),
  };
}
