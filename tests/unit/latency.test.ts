/** Response-time histograms per backend, and how a cluster primary adds up its workers' counters. */
import { describe, expect, test } from "bun:test";
import { counterGrowth, listGrowth } from "../../src/cluster/counters.ts";
import type { Counters } from "../../src/cluster/protocol.ts";
import { LATENCY_BOUNDS_SECONDS, LATENCY_BUCKETS, LatencyHistogram, quantileMs, sumLatency, totalCount } from "../../src/runtime/latency.ts";

/** Per-bucket counts with `n` observations in the bucket whose upper bound is `boundMs`. */
function countsWith(...entries: [boundMs: number, n: number][]): number[] {
  const counts = new Array<number>(LATENCY_BUCKETS).fill(0);
  for (const [boundMs, n] of entries) {
    const i = boundMs === Infinity ? LATENCY_BUCKETS - 1 : LATENCY_BOUNDS_SECONDS.findIndex((s) => Math.abs(s * 1000 - boundMs) < 1e-9);
    counts[i] = (counts[i] ?? 0) + n;
  }
  return counts;
}

describe("latency histogram", () => {
  test("bounds are Prometheus-style seconds from 1 ms to 30 s, plus one bucket above", () => {
    expect(LATENCY_BOUNDS_SECONDS[0]).toBe(0.001);
    expect(LATENCY_BOUNDS_SECONDS.at(-1)).toBe(30);
    expect(LATENCY_BUCKETS).toBe(LATENCY_BOUNDS_SECONDS.length + 1);
  });

  test("an observation lands in the first bucket whose bound it does not exceed (le: bounds are inclusive)", () => {
    const h = new LatencyHistogram();
    for (const ms of [0, 1, 1.0001, 2.5, 30, 31, 29_999, 30_000, 30_001]) h.observe(ms);
    expect(h.counts).toEqual(countsWith([1, 2], [2.5, 2], [50, 2], [30_000, 2], [Infinity, 1]));
    expect(h.sumMs).toBeCloseTo(0 + 1 + 1.0001 + 2.5 + 30 + 31 + 29_999 + 30_000 + 30_001, 6);
    expect(totalCount(h.counts)).toBe(9);
  });

  test("p99 interpolates inside the bucket that holds it, as histogram_quantile does", () => {
    expect(quantileMs(countsWith(), 0.99)).toBeNull();
    expect(quantileMs(countsWith([50, 100]), 0.99)).toBeCloseTo(25 + 25 * 0.99, 6);
    expect(quantileMs(countsWith([50, 100]), 0.5)).toBeCloseTo(37.5, 6);
    // 98 fast, 2 slow: the 99th is halfway into the slow bucket.
    expect(quantileMs(countsWith([1, 98], [250, 2]), 0.99)).toBeCloseTo(100 + 150 * 0.5, 6);
    expect(quantileMs(countsWith([1, 1]), 0.99)).toBeCloseTo(0.99, 6); // the first bucket starts at 0
    expect(quantileMs(countsWith([Infinity, 5]), 0.99)).toBe(30_000); // above the last bound: the largest we can name
  });

  test("histograms add up bucket by bucket", () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    a.observe(3);
    b.observe(3);
    b.observe(700);
    const sum = sumLatency(a, b);
    expect(Array.from(sum.counts)).toEqual(countsWith([5, 2], [1000, 1]));
    expect(sum.sumMs).toBe(706);
  });
});

describe("cluster counters", () => {
  const report = (total: number, failed: number, sumMs: number, counts: number[], outcomes = [0, total, 0, 0, failed]): Counters => ["b1", 0, total, failed, sumMs, counts, outcomes, "closed"];

  test("the primary adds what a worker's totals grew by since its last report", () => {
    const growth = counterGrowth(report(10, 1, 100, countsWith([5, 10])), report(15, 2, 130, countsWith([5, 14], [10, 1])));
    expect(growth).toEqual({ total: 5, failed: 1, latencySumMs: 30, latencyCounts: countsWith([5, 4], [10, 1]), outcomes: [0, 5, 0, 0, 1] });
  });

  test("a worker's first report, or one after it counted from 0 again, is all new", () => {
    const now = report(3, 0, 9, countsWith([5, 3]));
    expect(counterGrowth(undefined, now).total).toBe(3);
    expect(counterGrowth(report(500, 4, 900, countsWith([5, 500])), now)).toEqual({ total: 3, failed: 0, latencySumMs: 9, latencyCounts: countsWith([5, 3]), outcomes: [0, 3, 0, 0, 0] });
  });

  test("edge counter lists grow the same way", () => {
    expect(listGrowth([1, 2, 3], [2, 2, 5])).toEqual([1, 0, 2]);
    expect(listGrowth([5, 5], [1, 0])).toEqual([1, 0]);
    expect(listGrowth(undefined, [4])).toEqual([4]);
  });
});
