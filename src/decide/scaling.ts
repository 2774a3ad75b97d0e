/**
 * How many managed instances to run, from measured load. Pure.
 *
 * Modelled on Knative's pod autoscaler (KPA, pkg/autoscaler/scaling/autoscaler.go):
 * load (time-averaged requests in flight) is averaged over a long *stable*
 * window and a short *panic* window. Outside panic, scale up when the stable
 * average per ready instance exceeds `scaleUpThreshold`, by as many instances as
 * it takes to bring it under, in one step; scale down one instance at a time
 * once the average has stayed below `scaleDownThreshold` for `idleTimeout`;
 * never within `cooldown` of the last action. A spike that would need
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
  /** Instances taking traffic. */
  readonly ready: number;
}

export interface ScaleState {
  readonly desired: number;
  /** Time of the last scale action (-Infinity: none yet). */
  readonly lastActionAt: number;
  /** Since when the average has been below scaleDownThreshold (null: it is not). */
  readonly lowSince: number | null;
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
  return { desired: policy.min, lastActionAt: -Infinity, lowSince: null, panicUntil: 0 };
}

/** Fewest instances that bring `load` strictly under `threshold` each. */
export function instancesFor(load: number, threshold: number): number {
  return threshold > 0 ? Math.floor(load / threshold) + 1 : Number.POSITIVE_INFINITY;
}

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
  const spike = panicAvg > up && panicWants >= policy.panicThreshold * window.ready;
  const panicking = spike || now < state.panicUntil;
  const panicUntil = spike ? now + policy.stableWindow : state.panicUntil;

  if (panicking) {
    const to = clamp(Math.max(state.desired, panicWants, stableAvg > up ? instancesFor(window.stable, up) : 0));
    if (to > state.desired) return act(to, `avg load ${fmt(panicAvg, up)} > ${up}, panic`, { panicUntil, lowSince: null });
    return { state: { ...state, panicUntil, lowSince: null } };
  }

  const coolingDown = now - state.lastActionAt < policy.cooldown;
  if (stableAvg > up) {
    const to = clamp(instancesFor(window.stable, up));
    if (to > state.desired && !coolingDown) return act(to, `avg load ${fmt(stableAvg, up)} > ${up}`, { lowSince: null });
    return { state: { ...state, panicUntil, lowSince: null } };
  }

  if (stableAvg < policy.scaleDownThreshold) {
    const lowSince = state.lowSince ?? now;
    const idleLongEnough = now - lowSince >= policy.idleTimeout;
    if (idleLongEnough && !coolingDown && state.desired > policy.min) {
      return act(state.desired - 1, `avg load ${fmt(stableAvg, policy.scaleDownThreshold)} < ${policy.scaleDownThreshold} for ${Math.round((now - lowSince) / 1000)}s`, {
        lowSince,
        panicUntil,
      });
    }
    return { state: { ...state, lowSince, panicUntil } };
  }
  return { state: { ...state, lowSince: null, panicUntil } };
}
