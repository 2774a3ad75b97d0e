/**
 * Load as the SPEC defines it: requests in flight, time-averaged. The
 * scheduler samples every backend's in-flight count every 100 ms; averages
 * over the stable window give each backend's `load` (shown in `/lb-status`) and,
 * summed over managed instances, the autoscaler's input, together with the
 * short panic window's average.
 */
import type { LoadWindow } from "../decide/scaling.ts";
import type { Member, Pool } from "./pool.ts";
import type { Task } from "./scheduler.ts";

export const SAMPLE_EVERY_MS = 100;

/** The windows the averages are taken over, and the per-instance load below which the pool is quiet. */
export interface SamplerWindows {
  readonly stableWindow: number;
  readonly panicWindow: number;
  readonly scaleDownThreshold: number;
  /** The peak load is taken over this long (scaling.idleTimeout). */
  readonly idleTimeout: number;
}

/** Fixed-size ring of samples with a running sum. */
class Ring {
  readonly #values: Float64Array;
  #next = 0;
  #count = 0;

  constructor(size: number) {
    this.#values = new Float64Array(Math.max(1, size));
  }

  push(value: number): void {
    this.#values[this.#next] = value;
    this.#next = (this.#next + 1) % this.#values.length;
    this.#count = Math.min(this.#count + 1, this.#values.length);
  }

  get count(): number {
    return this.#count;
  }

  get size(): number {
    return this.#values.length;
  }

  /** Highest of all samples held. */
  max(): number {
    let max = 0;
    for (let i = 0; i < this.#count; i++) max = Math.max(max, this.#values[i] ?? 0);
    return max;
  }

  /** Mean of the newest `n` samples (fewer if fewer were taken). */
  meanOfLast(n: number): number {
    const take = Math.min(n, this.#count);
    if (take === 0) return 0;
    let sum = 0;
    for (let i = 1; i <= take; i++) sum += this.#values[(this.#next - i + this.#values.length) % this.#values.length] ?? 0;
    return sum / take;
  }
}

export class LoadSampler {
  readonly #pool: Pool;
  #stableSamples: number;
  #panicSamples: number;
  #managed: Ring;
  /** Managed load samples over the last idleTimeout, for their peak. */
  #recent: Ring;
  readonly #perMember = new WeakMap<Member, Ring>();
  #quietBelow: number;
  /** When (performance.now()) a sample last reached `scaleDownThreshold` per ready instance. */
  #lastBusyAt = performance.now();

  readonly #queued: () => number;

  /** `queued`: requests waiting for a backend slot; they count as load of the managed instances. */
  constructor(pool: Pool, windows: SamplerWindows, queued: () => number = () => 0) {
    this.#pool = pool;
    this.#queued = queued;
    this.#stableSamples = Math.max(1, Math.round(windows.stableWindow / SAMPLE_EVERY_MS));
    this.#panicSamples = Math.max(1, Math.round(windows.panicWindow / SAMPLE_EVERY_MS));
    this.#managed = new Ring(this.#stableSamples);
    this.#recent = new Ring(Math.round(windows.idleTimeout / SAMPLE_EVERY_MS));
    this.#quietBelow = windows.scaleDownThreshold;
  }

  /** New window sizes or threshold (config reload); history restarts. */
  resize(windows: SamplerWindows): void {
    this.#stableSamples = Math.max(1, Math.round(windows.stableWindow / SAMPLE_EVERY_MS));
    this.#panicSamples = Math.max(1, Math.round(windows.panicWindow / SAMPLE_EVERY_MS));
    this.#managed = new Ring(this.#stableSamples);
    this.#recent = new Ring(Math.round(windows.idleTimeout / SAMPLE_EVERY_MS));
    this.#quietBelow = windows.scaleDownThreshold;
  }

  sample(): void {
    let managed = 0;
    let ready = 0;
    for (const member of this.#pool.backends) {
      if (member.managed && member.state === "healthy") ready++;
      let ring = this.#perMember.get(member);
      if (!ring) this.#perMember.set(member, (ring = new Ring(this.#stableSamples)));
      const inflight = member.inflight + member.remote.inflight; // remote: a cluster's workers
      ring.push(inflight);
      member.load = ring.meanOfLast(this.#stableSamples);
      if (member.managed) managed += inflight;
    }
    if (ready > 0) managed += this.#queued();
    this.#managed.push(managed);
    this.#recent.push(managed);
    if (ready === 0 || managed >= this.#quietBelow * ready) this.#lastBusyAt = performance.now();
  }

  /** The autoscaler's input: managed in-flight averages and how many instances take traffic. */
  window(): LoadWindow {
    let ready = 0;
    for (const member of this.#pool.backends) if (member.managed && member.state === "healthy") ready++;
    // Until a whole idleTimeout has been sampled, the peak is unknown: no scale-down on it.
    const peak = this.#recent.count < this.#recent.size ? Number.POSITIVE_INFINITY : this.#recent.max();
    return {
      stable: this.#managed.meanOfLast(this.#stableSamples),
      panic: this.#managed.meanOfLast(this.#panicSamples),
      recent: this.#managed.meanOfLast(Math.round(1000 / SAMPLE_EVERY_MS)),
      ready,
      quietSince: this.#lastBusyAt,
      peak,
    };
  }

  task(): Task {
    return { name: "load sampling", every: SAMPLE_EVERY_MS, run: () => this.sample() };
  }
}
