/**
 * How many managed instances to run, from measured load. Pure.
 *
 * Modelled on Knative's pod autoscaler (KPA, pkg/autoscaler/scaling/autoscaler.go):
 * load (time-averaged requests in flight) is averaged over a long *stable*
 * window and a short *panic* window. Outside panic, scale up when the stable
 * average per ready instance exceeds `scaleUpThreshold`, by as many instances as
 * it takes to bring it under, in one step; scale down one instance at a time
 * once the load has stayed below `scaleDownThreshold` per instance for
 * `idleTimeout`; never within `cooldown` of the last action.
 *
 * "Stayed below" is measured on the load samples themselves (`quietSince`:
 * when the sampled in-flight count last reached the threshold), not on the
 * stable average: that average lags the load by up to a whole stable window,
 * and waiting for it before starting `idleTimeout` put the first scale-down a
 * stable window late (60 s instead of 30 with the original autoscaler's
 * config). So the first scale-down comes within `idleTimeout` + one
 * `checkInterval` of the load going away. Flapping stays prevented: the quiet
 * must last the whole `idleTimeout`, cooldown applies, panic blocks it, and a
 * scale-down never leaves the current (panic-window) load above
 * `scaleUpThreshold` per instance.
 *
 * The quiet rule alone leaves a pool that a spike grew far too big: 4 requests
 * in flight keep 8 instances at exactly 0.5 each, never "below", although 2
 * would serve them. So a pool also shrinks when the *peak* load of the last
 * `idleTimeout` would fit in fewer instances at `TARGET_UTILIZATION` of
 * `scaleUpThreshold` each (Knative's target utilization, 70 %: the margin that
 * keeps the smaller pool from scaling right back up). Still one instance at a
 * time, cooldown apart, as the SPEC has it. Either way the pool comes to rest
 * at the count the load needs.
 *
 * A spike that would need
 * `panicThreshold` × the current instances in the panic window starts *panic*:
 * scale up at once (cooldown does not apply) and never down, until the stable
 * window has passed without another spike.
 */

export interface ScalingPolicy {
  readonly min: number;
  readonly max: number;
  readonly scaleUpThreshold: number;
  readonly scaleDownThreshold: number;
  readonly idleTimeout: number;
  readonly cooldown: number;
  readonly stableWindow: number;
  readonly panicThreshold: number;
}

/** Load measured by the scheduler: total requests in flight, time-averaged. */
export interface LoadWindow {
  /** Average over the stable window. */
  readonly stable: number;
  /** Average over the panic window. */
  readonly panic: number;
  /** Average over the last second: what a panic sizes the pool for (the panic window fills as a spike goes on). */
  readonly recent?: number;
  /** Instances taking traffic. */
  readonly ready: number;
  /** Since when (same clock as `now`) the sampled load has stayed below `scaleDownThreshold` per ready instance. */
  readonly quietSince: number;
  /** Highest sampled load over the last `idleTimeout` (Infinity until that much has been sampled). */
  readonly peak: number;
}

export interface ScaleState {
  readonly desired: number;
  /** Time of the last scale action (-Infinity: none yet). */
  readonly lastActionAt: number;
  /** Panicking while now < panicUntil. */
  readonly panicUntil: number;
}

export interface ScaleAction {
  readonly direction: "up" | "down";
  readonly from: number;
  readonly to: number;
  readonly reason: string;
}

export function initialScaleState(policy: ScalingPolicy): ScaleState {
  return { desired: policy.min, lastActionAt: -Infinity, panicUntil: 0 };
}

/** Fewest instances that bring `load` strictly under `threshold` each. */
export function instancesFor(load: number, threshold: number): number {
  return threshold > 0 ? Math.floor(load / threshold) + 1 : Number.POSITIVE_INFINITY;
}

/**
 * The panic window's load would need `panicThreshold` × the ready instances:
 * scale up now. The autoscaler looks for this between checks too, so a spike
 * does not wait up to a whole `checkInterval`.
 */
export function isSpike(window: LoadWindow, policy: ScalingPolicy): boolean {
  if (window.ready === 0) return false;
  const up = policy.scaleUpThreshold;
  return window.panic / window.ready > up && instancesFor(window.panic, up) >= policy.panicThreshold * window.ready;
}

/** Share of `scaleUpThreshold` a pool shrunk for its peak load may run at (Knative's default target utilization). */
export const TARGET_UTILIZATION = 0.7;

/** Two decimals, or three when two would print the threshold itself ("0.50 < 0.5" reads as false). */
const fmt = (n: number, threshold: number) => (n.toFixed(2) === threshold.toFixed(2) ? n.toFixed(3) : n.toFixed(2));

export function planScale(window: LoadWindow, state: ScaleState, policy: ScalingPolicy, now: number): { state: ScaleState; action?: ScaleAction } {
  const clamp = (n: number) => Math.max(policy.min, Math.min(policy.max, n));
  const act = (to: number, reason: string, next: Partial<ScaleState> = {}) => ({
    state: { ...state, ...next, desired: to, lastActionAt: now },
    action: { direction: to > state.desired ? "up" : "down", from: state.desired, to, reason } as ScaleAction,
  });

  // Out of bounds (a config change, a manual scale): fix that first.
  if (state.desired !== clamp(state.desired)) {
    const to = clamp(state.desired);
    return act(to, to > state.desired ? `below min ${policy.min}` : `above max ${policy.max}`);
  }
  // Nothing ready to measure (starting up, or scaled to zero): wait; a cold start is the proxy's call.
  if (window.ready === 0) return { state };

  const stableAvg = window.stable / window.ready;
  const panicAvg = window.panic / window.ready;
  const up = policy.scaleUpThreshold;

  const panicWants = instancesFor(window.panic, up);
  const spike = isSpike(window, policy);
  const panicking = spike || now < state.panicUntil;
  // Panic lasts a stable window past the spike, and the spike lasts while the short-window load
  // is still over the threshold (at max, or once capacity was added, it is no longer a "spike").
  const panicUntil = spike || (panicking && panicAvg > up) ? now + policy.stableWindow : state.panicUntil;

  if (panicking) {
    // The spike is detected on the panic window; the pool is sized for the load now, which that
    // window's average only reaches a whole window later (2 -> 4 -> 8 -> 10 over 4.6 s, measured).
    const nowWants = window.recent !== undefined && window.recent > window.panic ? instancesFor(window.recent, up) : 0;
    const to = clamp(Math.max(state.desired, panicWants, nowWants, stableAvg > up ? instancesFor(window.stable, up) : 0));
    if (to > state.desired) return act(to, `avg load ${fmt(nowWants > panicWants ? window.recent! / window.ready : panicAvg, up)} > ${up}, panic`, { panicUntil });
    return { state: { ...state, panicUntil } };
  }

  const coolingDown = now - state.lastActionAt < policy.cooldown;
  if (stableAvg > up) {
    const to = clamp(instancesFor(window.stable, up));
    if (to > state.desired) return coolingDown ? { state: { ...state, panicUntil } } : act(to, `avg load ${fmt(stableAvg, up)} > ${up}`);
    // At max already: the stable average may still remember a load that has gone; the quiet decides below.
  }

  if (coolingDown || state.desired <= policy.min) return { state: { ...state, panicUntil } };
  const quietFor = now - window.quietSince;
  const fewerStillServe = window.panic === 0 || instancesFor(window.panic, up) <= state.desired - 1;
  if (quietFor >= policy.idleTimeout && fewerStillServe) {
    const down = policy.scaleDownThreshold;
    return act(state.desired - 1, `load ${fmt(panicAvg, down)} < ${down} per instance for ${Math.round(quietFor / 1000)}s`, { panicUntil });
  }
  const target = up * TARGET_UTILIZATION;
  const needed = instancesFor(window.peak, target);
  if (needed < state.desired) {
    const seconds = Math.round(policy.idleTimeout / 1000);
    return act(state.desired - 1, `peak load ${window.peak.toFixed(2)} over ${seconds}s needs ${needed} instance(s) at ${target.toFixed(2)} each`, { panicUntil });
  }
  return { state: { ...state, panicUntil } };
}
