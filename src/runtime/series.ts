/**
 * The dashboard's time series: once a second the sampler reads the pool's
 * counters (this process's plus, in a cluster's primary, the workers'), turns
 * what moved since the last sample into one point (request rate, error rate,
 * p99 from the latency histograms' increments, instances desired and running)
 * and appends it to a series that keeps the last 5 minutes. It runs on the
 * scheduler, off the request path: a request only moves its counters.
 * A cluster worker keeps a copy of the primary's series, fed over IPC.
 */
import { LATENCY_BUCKETS, quantileMs } from "./latency.ts";
import type { Member, Pool } from "./pool.ts";
import type { Task } from "./scheduler.ts";

export const SERIES_EVERY_MS = 1000;
/** Five minutes at one point a second. */
export const SERIES_POINTS = 300;

export interface SeriesPoint {
  /** End of the interval, ms since the epoch. */
  readonly t: number;
  /** Requests sent to backends per second (a retry counts again). */
  readonly rps: number;
  /** Of those, failed ones per second (connection error, timeout, 5xx). */
  readonly errors: number;
  /** 99th percentile of time to response headers over the interval, ms; null without responses. */
  readonly p99: number | null;
  /** Requests in flight at the sample. */
  readonly inflight: number;
  /** Managed instances the autoscaler wants, and those ready (healthy). */
  readonly desired: number;
  readonly running: number;
  /** Backends taking traffic, and all backends in the pool. */
  readonly healthy: number;
  readonly total: number;
}

/** The last `capacity` points and whoever wants each new one (the event streams, a primary's IPC). */
export class TrafficSeries {
  readonly capacity: number;
  #points: SeriesPoint[] = [];
  readonly #listeners = new Set<(point: SeriesPoint) => void>();

  constructor(capacity = SERIES_POINTS) {
    this.capacity = capacity;
  }

  get points(): readonly SeriesPoint[] {
    return this.#points;
  }

  /** Appends a point; one not newer than the last (a backlog overlapping what arrived) is dropped. */
  push(point: SeriesPoint): void {
    const last = this.#points[this.#points.length - 1];
    if (last && point.t <= last.t) return;
    this.#points.push(point);
    if (this.#points.length > this.capacity) this.#points.shift();
    for (const listener of this.#listeners) listener(point);
  }

  /** Calls `listener` with each new point; returns the unsubscribe. */
  subscribe(listener: (point: SeriesPoint) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** A backend's counters when last sampled. */
interface Seen {
  total: number;
  failed: number;
  readonly latency: number[];
}

export class SeriesSampler {
  readonly #pool: Pool;
  readonly #series: TrafficSeries;
  readonly #desired: () => number;
  /** Keyed by member: a restarted instance is a new member whose counters start again from 0. */
  readonly #seen = new WeakMap<Member, Seen>();
  /** Scratch: this interval's latency increments, summed over backends. */
  readonly #interval = new Array<number>(LATENCY_BUCKETS).fill(0);
  #last = performance.now();

  constructor(pool: Pool, series: TrafficSeries, desired: () => number) {
    this.#pool = pool;
    this.#series = series;
    this.#desired = desired;
  }

  sample(now = performance.now(), wall = Date.now()): void {
    const seconds = Math.max(0.001, (now - this.#last) / 1000);
    this.#last = now;
    this.#interval.fill(0);
    let requests = 0;
    let failed = 0;
    let inflight = 0;
    let healthy = 0;
    let running = 0;
    for (const member of this.#pool.backends) {
      let seen = this.#seen.get(member);
      if (!seen) this.#seen.set(member, (seen = { total: 0, failed: 0, latency: new Array<number>(LATENCY_BUCKETS).fill(0) }));
      const { remote } = member;
      const total = member.totalRequests + remote.total;
      const failures = member.failedRequests + remote.failed;
      // Counters only grow while a member exists; max() keeps a surprise from drawing a negative rate.
      requests += Math.max(0, total - seen.total);
      failed += Math.max(0, failures - seen.failed);
      seen.total = total;
      seen.failed = failures;
      for (let i = 0; i < LATENCY_BUCKETS; i++) {
        const count = (member.latency.counts[i] ?? 0) + (remote.latency.counts[i] ?? 0);
        this.#interval[i] = (this.#interval[i] ?? 0) + Math.max(0, count - (seen.latency[i] ?? 0));
        seen.latency[i] = count;
      }
      inflight += member.inflight + remote.inflight;
      if (member.available) healthy++;
      if (member.managed && member.state === "healthy") running++;
    }
    const p99 = quantileMs(this.#interval, 0.99);
    this.#series.push({
      t: wall,
      rps: round1(requests / seconds),
      errors: round1(failed / seconds),
      p99: p99 === null ? null : round1(p99),
      inflight,
      desired: this.#desired(),
      running,
      healthy,
      total: this.#pool.backends.length,
    });
  }

  task(): Task {
    return { name: "dashboard series", every: SERIES_EVERY_MS, run: () => this.sample() };
  }
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}
