/**
 * Passive health as one circuit breaker per backend (Envoy's outlier
 * detection and its circuit-breaker vocabulary, folded into one state):
 *
 *   closed ──(consecutiveFailures in a row, or errorRate over the window)──▶ open
 *   open ──(baseTime × times opened passes, or an active probe passes)──▶ half-open
 *   half-open ──(`trials` requests succeed)──▶ closed
 *   half-open ──(a trial fails)──▶ open again, for longer
 *
 * "Ejected" is the open state: no new traffic unless nothing else is left.
 * Half-open lets at most `trials` requests in flight (the pool turns that into
 * slots, so a sick backend that comes back is not handed the whole load at
 * once). The multiplier decays by one for every `baseTime` the circuit stays
 * closed. Never more than half the pool is open at once (Envoy's
 * max_ejection_percent), so a wide outage degrades to "try everything" instead
 * of "serve nothing". Pure; time is passed in.
 */

export type Circuit = "closed" | "open" | "half-open";

/** Why a circuit opened, for the log line and /lb-status. */
export type OpenReason = "consecutive-failures" | "error-rate" | "trial-failed";

export interface Outlier {
  readonly circuit: Circuit;
  readonly consecutiveFailures: number;
  /** Open until this time (then half-open); 0 when not open. */
  readonly openUntil: number;
  readonly timesEjected: number;
  /** When `timesEjected` next decays. */
  readonly decayAt: number;
  /** Half-open: trial requests that succeeded so far. */
  readonly trialsPassed: number;
  /** Why it last opened. */
  readonly reason: OpenReason | undefined;
}

export interface EjectConfig {
  readonly consecutiveFailures: number;
  readonly baseTime: number;
  /** Share of failed requests in the window that opens the circuit; 0: off. */
  readonly errorRate: number;
  /** Requests the window must hold before the error rate counts. */
  readonly minRequests: number;
  readonly window: number;
  /** Requests in flight while half-open, and successes that close it. */
  readonly trials: number;
}

/** Requests and failures of the current error-rate window, this outcome included. */
export interface WindowCounts {
  readonly requests: number;
  readonly failures: number;
}

export const FRESH_OUTLIER: Outlier = {
  circuit: "closed",
  consecutiveFailures: 0,
  openUntil: 0,
  timesEjected: 0,
  decayAt: 0,
  trialsPassed: 0,
  reason: undefined,
};

export function isEjected(o: Outlier): boolean {
  return o.circuit === "open";
}

/** May one more circuit open, given how many already are? */
export function mayEject(openCount: number, poolSize: number): boolean {
  return openCount + 1 <= Math.floor(poolSize / 2);
}

function open(o: Outlier, reason: OpenReason, cfg: EjectConfig, now: number): Outlier {
  const timesEjected = o.timesEjected + 1;
  const openUntil = now + cfg.baseTime * timesEjected;
  return { circuit: "open", consecutiveFailures: 0, openUntil, timesEjected, decayAt: openUntil + cfg.baseTime, trialsPassed: 0, reason };
}

function tripped(o: Outlier, window: WindowCounts, cfg: EjectConfig): OpenReason | undefined {
  if (cfg.consecutiveFailures > 0 && o.consecutiveFailures >= cfg.consecutiveFailures) return "consecutive-failures";
  if (cfg.errorRate > 0 && window.requests >= cfg.minRequests && window.failures >= cfg.errorRate * window.requests) return "error-rate";
  return undefined;
}

/**
 * Folds one request outcome in. `failed`: connection failure, timeout or 5xx
 * (never the client's mistakes). `canEject`: opening one more circuit keeps at
 * least half the pool closed. Outcomes of requests that reach an open backend
 * (when nothing else was left) change nothing: the timer or a probe decides.
 */
export function recordOutcome(o: Outlier, failed: boolean, window: WindowCounts, cfg: EjectConfig, now: number, canEject: boolean): Outlier {
  switch (o.circuit) {
    case "open":
      return o;
    case "half-open":
      if (failed) return canEject ? open(o, "trial-failed", cfg, now) : { ...o, trialsPassed: 0 };
      if (o.trialsPassed + 1 < cfg.trials) return { ...o, trialsPassed: o.trialsPassed + 1 };
      return { ...o, circuit: "closed", consecutiveFailures: 0, trialsPassed: 0, decayAt: now + cfg.baseTime };
    case "closed": {
      if (!failed) return o.consecutiveFailures === 0 ? o : { ...o, consecutiveFailures: 0 };
      const counted = { ...o, consecutiveFailures: o.consecutiveFailures + 1 };
      const reason = tripped(counted, window, cfg);
      return reason && canEject ? open(o, reason, cfg, now) : counted;
    }
  }
}

/**
 * An active probe passed: the backend answers again, so an open circuit turns
 * half-open now instead of at `openUntil` (Envoy's
 * successful_active_health_check_uneject_host, on by default there too).
 * Without this, a backend killed and restarted between two probes stays out
 * for the whole `baseTime` although every probe passes. Half-open, not closed:
 * a probe proves the backend answers `/health`, the trials prove it serves.
 * A closed circuit forgets its run of failures. The multiplier stays.
 */
export function probePassed(o: Outlier): Outlier {
  if (o.circuit === "open") return { ...o, circuit: "half-open", openUntil: 0, trialsPassed: 0 };
  return o.consecutiveFailures === 0 ? o : { ...o, consecutiveFailures: 0 };
}

/** Called periodically: an open circuit whose time is up turns half-open; the multiplier decays while closed. */
export function advanceOutlier(o: Outlier, cfg: EjectConfig, now: number): Outlier {
  if (o.circuit === "open") return now < o.openUntil ? o : { ...o, circuit: "half-open", openUntil: 0, trialsPassed: 0 };
  if (o.circuit !== "closed" || o.timesEjected === 0 || now < o.decayAt) return o;
  return { ...o, timesEjected: o.timesEjected - 1, decayAt: now + cfg.baseTime };
}

const SEVERITY: Record<Circuit, number> = { closed: 0, "half-open": 1, open: 2 };

/** Of two processes' circuits for one backend, the one an operator must see (open, then half-open). */
export function worseCircuit(a: Circuit, b: Circuit): Circuit {
  return SEVERITY[b] > SEVERITY[a] ? b : a;
}

/** Slots a half-open backend has in one process: `trials` shared by the processes, within its own limit. */
export function trialSlots(trials: number, processes: number, configuredSlots: number): number {
  const share = Math.max(1, Math.ceil(trials / processes));
  return configuredSlots > 0 ? Math.min(configuredSlots, share) : share;
}
