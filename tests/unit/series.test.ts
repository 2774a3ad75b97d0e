/** The dashboard's once-a-second series: rates and p99 from what the pool's counters moved by. */
import { describe, expect, test } from "bun:test";
import { LATENCY_BOUNDS_SECONDS, LATENCY_BUCKETS } from "../../src/runtime/latency.ts";
import { Pool } from "../../src/runtime/pool.ts";
import { SeriesSampler, TrafficSeries, type SeriesPoint } from "../../src/runtime/series.ts";

const HEALTH = { path: "/health", interval: 5000, timeout: 2000, rise: 1, fall: 2, eject: { consecutiveFailures: 3, baseTime: 10_000, errorRate: 0.5, minRequests: 20, window: 10_000, trials: 3 } };

/** Per-bucket counts with `n` observations in the bucket whose upper bound is `boundMs`. */
function countsWith(boundMs: number, n: number): number[] {
  const counts = new Array<number>(LATENCY_BUCKETS).fill(0);
  counts[LATENCY_BOUNDS_SECONDS.findIndex((s) => Math.abs(s * 1000 - boundMs) < 1e-9)] = n;
  return counts;
}

describe("dashboard series sampler", () => {
  function setup() {
    const pool = new Pool(HEALTH);
    const series = new TrafficSeries(3);
    let desired = 2;
    const sampler = new SeriesSampler(pool, series, () => desired);
    const member = pool.addStatic({ url: "http://a:1", host: "a:1", port: 1, weight: 1, maxConnections: 0 });
    return { pool, series, sampler, member, setDesired: (n: number) => (desired = n) };
  }

  test("each point is what the counters moved by since the last one, per second, with p99 from the histogram", () => {
    const { series, sampler, member, pool } = setup();
    sampler.sample(0, 1000);
    for (let i = 0; i < 20; i++) {
      member.totalRequests++;
      pool.observeResponseTime(member, 30);
    }
    member.failedRequests += 2;
    member.inflight = 3;
    sampler.sample(2000, 3000); // two seconds later
    const point = series.points.at(-1) as SeriesPoint;
    expect(point).toMatchObject({ t: 3000, rps: 10, errors: 1, inflight: 3, desired: 2, running: 0, healthy: 1, total: 1 });
    expect(point.p99).toBeCloseTo(25 + 25 * 0.99, 1);
    sampler.sample(3000, 4000);
    expect(series.points.at(-1)).toMatchObject({ rps: 0, errors: 0, p99: null });
  });

  test("a cluster's workers count too, and a new member under an old id starts from 0", () => {
    const { series, sampler, member, pool } = setup();
    sampler.sample(0, 1000);
    member.remote.total += 4;
    member.remote.latency.add(countsWith(250, 4), 800);
    sampler.sample(1000, 2000);
    expect(series.points.at(-1)).toMatchObject({ rps: 4 });
    expect(series.points.at(-1)?.p99).toBeGreaterThan(100);
    pool.remove(member);
    const fresh = pool.addStatic({ url: "http://a:1", host: "a:1", port: 1, weight: 1, maxConnections: 0 });
    fresh.totalRequests = 1;
    sampler.sample(2000, 3000);
    expect(series.points.at(-1)).toMatchObject({ rps: 1 });
  });

  test("the series keeps its capacity and tells subscribers each new point", () => {
    const { series, sampler, setDesired } = setup();
    const seen: number[] = [];
    const unsubscribe = series.subscribe((p) => seen.push(p.desired));
    for (let i = 1; i <= 5; i++) {
      setDesired(i);
      sampler.sample(i * 1000, i * 1000);
    }
    unsubscribe();
    sampler.sample(6000, 6000);
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(series.points.map((p) => p.t)).toEqual([4000, 5000, 6000]);
    series.push({ ...(series.points.at(-1) as SeriesPoint) }); // not newer than the last: dropped
    expect(series.points).toHaveLength(3);
  });
});
