/**
 * Response-time histograms with fixed buckets, one per backend, as Prometheus
 * client libraries keep them: a count per bucket and a running sum, so
 * histograms from several processes add up bucket by bucket (a cluster's
 * primary sums its workers') and quantiles are estimated the way PromQL's
 * `histogram_quantile` does. The counts here are per bucket, not cumulative:
 * a `fulcrum_backend_response_seconds` family renders bucket i as
 * `le="LATENCY_BOUNDS_SECONDS[i]"` with the running sum of counts 0..i,
 * `+Inf` with `count`, and `_sum` as `sumMs / 1000`.
 */

/** Upper bounds of the buckets, seconds (Prometheus' `le`; a last bucket above 30 s is implied). */
export const LATENCY_BOUNDS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

/** The same bounds in milliseconds (rounded: 0.0025 × 1000 is not exactly 2.5 in binary). */
const BOUNDS_MS = LATENCY_BOUNDS_SECONDS.map((s) => Math.round(s * 1e6) / 1e3);

/** Buckets per histogram: one per bound plus the one above the last bound. */
export const LATENCY_BUCKETS = LATENCY_BOUNDS_SECONDS.length + 1;

/** What is read of a histogram: per-bucket counts (not cumulative) and the sum of observations. */
export interface LatencyCounts {
  readonly counts: ArrayLike<number>;
  readonly sumMs: number;
}

export class LatencyHistogram implements LatencyCounts {
  /** `counts[i]`: observations in (bound i-1, bound i]; the last: above 30 s. */
  readonly counts: number[] = new Array<number>(LATENCY_BUCKETS).fill(0);
  sumMs = 0;

  /** One response's time to headers. On the request path: a short scan, no allocation. */
  observe(ms: number): void {
    let i = 0;
    while (i < BOUNDS_MS.length && ms > (BOUNDS_MS[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sumMs += ms;
  }

  /** Adds another histogram's counts (a cluster worker's increments). */
  add(counts: ArrayLike<number>, sumMs: number): void {
    for (let i = 0; i < LATENCY_BUCKETS; i++) this.counts[i] = (this.counts[i] as number) + (counts[i] ?? 0);
    this.sumMs += sumMs;
  }
}

/** Two histograms added up (a backend's own and its cluster workers'). */
export function sumLatency(a: LatencyCounts, b: LatencyCounts): LatencyCounts {
  const sum = new LatencyHistogram();
  sum.add(a.counts, a.sumMs);
  sum.add(b.counts, b.sumMs);
  return sum;
}

/** Total observations in per-bucket `counts`. */
export function totalCount(counts: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < counts.length; i++) n += counts[i] ?? 0;
  return n;
}

/**
 * The q-quantile (0..1) of per-bucket `counts`, in ms, or null when there are
 * none. As PromQL's histogram_quantile: find the bucket holding the rank and
 * interpolate linearly inside it (the first bucket starts at 0); a rank in the
 * bucket above the last bound answers that bound, the largest we can name.
 */
export function quantileMs(counts: ArrayLike<number>, q: number): number | null {
  const total = totalCount(counts);
  if (total === 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < BOUNDS_MS.length; i++) {
    const inBucket = counts[i] ?? 0;
    if (inBucket > 0 && below + inBucket >= rank) {
      const lower = i === 0 ? 0 : (BOUNDS_MS[i - 1] as number);
      const upper = BOUNDS_MS[i] as number;
      return lower + (upper - lower) * Math.max(0, (rank - below) / inBucket);
    }
    below += inBucket;
  }
  return BOUNDS_MS[BOUNDS_MS.length - 1] as number;
}
