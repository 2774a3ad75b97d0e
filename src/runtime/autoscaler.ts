/**
 * The autoscaling loop: every `scaling.checkInterval`, measure (LoadSampler) →
 * decide (planScale, pure) → act (Supervisor.scaleTo), and log a `SCALE:` line
 * with the reason. Between checks it looks for a spike every 500 ms (isSpike):
 * a panic scale-up ignores the cooldown and need not wait for the next check
 * either (with the 5 s default, a step in load could wait 5 s for capacity). Also the one place that records scale actions taken for
 * other reasons (a request arriving while scaled to zero, a manual scale), so
 * `/lb-status` shows the last action whatever caused it.
 */
import type { ResolvedConfig, ResolvedInstances } from "../config/schema.ts";
import { initialScaleState, isSpike, planScale, type ScaleState, type ScalingPolicy } from "../decide/scaling.ts";
import type { ScalingStatus } from "../http/status.ts";
import type { LoadSampler } from "./load-sampler.ts";
import type { Logger } from "./log.ts";
import type { Task } from "./scheduler.ts";
import type { Supervisor } from "./supervisor.ts";

export function scalingPolicy(instances: ResolvedInstances, scaling: ResolvedConfig["scaling"]): ScalingPolicy {
  return { ...scaling, min: instances.min, max: instances.max };
}

type LastAction = NonNullable<ScalingStatus["lastAction"]>;

/** How often the autoscaler looks for a spike between two checks. */
const SPIKE_LOOK_EVERY_MS = 500;

export class Autoscaler {
  readonly #supervisor: Supervisor;
  readonly #sampler: LoadSampler;
  readonly #log: Logger;
  #policy: ScalingPolicy;
  #checkInterval: number;
  #state: ScaleState;
  /** Scale actions taken so far, by direction (for /lb-metrics). */
  readonly #actions = { up: 0, down: 0 };
  #lastAction: LastAction | null = null;
  #coldStart: Promise<boolean> | undefined;
  /** The first full check comes a checkInterval after the start, as before there were looks in between. */
  #lastCheckAt = performance.now();

  constructor(supervisor: Supervisor, sampler: LoadSampler, policy: ScalingPolicy, checkInterval: number, log: Logger) {
    this.#supervisor = supervisor;
    this.#sampler = sampler;
    this.#policy = policy;
    this.#checkInterval = checkInterval;
    this.#log = log;
    this.#state = { ...initialScaleState(policy), desired: supervisor.desired };
  }

  update(policy: ScalingPolicy, checkInterval: number): void {
    this.#policy = policy;
    this.#checkInterval = checkInterval;
  }

  status(): ScalingStatus & { load: number } {
    const window = this.#sampler.window();
    return {
      min: this.#policy.min,
      max: this.#policy.max,
      desired: this.#supervisor.desired,
      load: window.ready > 0 ? Math.round((window.stable / window.ready) * 100) / 100 : 0,
      lastAction: this.#lastAction,
      actions: { ...this.#actions },
    };
  }

  task(): Task {
    return { name: "autoscaling", every: Math.min(this.#checkInterval, SPIKE_LOOK_EVERY_MS), run: () => this.#look(performance.now()) };
  }

  /** A full check every checkInterval (half a look early, so timer jitter does not skip one); in between, only a spike acts. */
  #look(now: number): void {
    if (now - this.#lastCheckAt >= this.#checkInterval - SPIKE_LOOK_EVERY_MS / 2) {
      this.#lastCheckAt = now;
      this.tick(now);
    } else if (isSpike(this.#sampler.window(), this.#policy)) {
      this.tick(now);
    }
  }

  tick(now: number): void {
    // The supervisor's count is the truth: manual scales and cold starts change it too.
    const decision = planScale(this.#sampler.window(), { ...this.#state, desired: this.#supervisor.desired }, this.#policy, now);
    this.#state = decision.state;
    const action = decision.action;
    if (!action) return;
    this.record(action.direction, action.from, action.to, action.reason);
    this.#supervisor.scaleTo(action.to);
  }

  /** A count set by hand (`POST /lb-admin/scale`), kept within min..max: the one place that clamp lives outside planScale. */
  manualScale(desired: number, reason: string): { desired: number; clamped: boolean } {
    const clamped = Math.max(this.#policy.min, Math.min(this.#policy.max, desired));
    const from = this.#supervisor.desired;
    if (clamped !== from) {
      this.record(clamped > from ? "up" : "down", from, clamped, reason);
      this.#supervisor.scaleTo(clamped);
    }
    return { desired: clamped, clamped: clamped !== desired };
  }

  /** Logs and remembers a scale action. */
  record(direction: "up" | "down", from: number, to: number, reason: string): void {
    this.#log.scale(direction === "up" ? "UP" : "DOWN", from, to, reason);
    this.#lastAction = { direction, from, to, reason, at: new Date().toISOString() };
    this.#actions[direction]++;
    this.#state = { ...this.#state, desired: to, lastActionAt: performance.now() };
  }

  /**
   * A request found no instance ready. While scaled to zero, start one (once,
   * however many requests are waiting); while instances are starting or
   * restarting, wait for them. Resolves true when an instance is ready within
   * `instances.startTimeout`.
   */
  coldStart(): Promise<boolean> {
    if (this.#supervisor.ready > 0) return Promise.resolve(true);
    if (this.#supervisor.desired === 0 && this.#policy.max > 0) {
      this.#coldStart ??= (async () => {
        this.record("up", 0, 1, "request while scaled to zero");
        this.#supervisor.scaleTo(1);
        return this.#supervisor.whenReady(this.#supervisor.config.startTimeout);
      })().finally(() => {
        this.#coldStart = undefined;
      });
      return this.#coldStart;
    }
    if (this.#coldStart) return this.#coldStart;
    if (this.#supervisor.comingUp) return this.#supervisor.whenReady(this.#supervisor.config.startTimeout);
    return Promise.resolve(false);
  }
}
