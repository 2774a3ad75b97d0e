/**
 * Passive health (Envoy's outlier detection, vocabulary and all): a backend
 * whose requests fail `consecutiveFailures` times in a row is ejected for
 * `baseTime` × the number of times it has been ejected; the multiplier decays
 * by one for every `baseTime` it then stays in. Never more than half the pool
 * is ejected at once (Envoy's max_ejection_percent), so a wide outage degrades
 * to "try everything" instead of "serve nothing". Pure; time is passed in.
 */

export interface Outlier {
  readonly consecutiveFailures: number;
  /** Ejected while `now < ejectedUntil`. */
  readonly ejectedUntil: number;
  readonly timesEjected: number;
  /** When `timesEjected` next decays. */
  readonly decayAt: number;
}

export interface EjectConfig {
  readonly consecutiveFailures: number;
  readonly baseTime: number;
}

export const FRESH_OUTLIER: Outlier = { consecutiveFailures: 0, ejectedUntil: 0, timesEjected: 0, decayAt: 0 };

export function isEjected(o: Outlier, now: number): boolean {
  return now < o.ejectedUntil;
}

/** May one more backend be ejected, given how many already are? */
export function mayEject(ejectedCount: number, poolSize: number): boolean {
  return ejectedCount + 1 <= Math.floor(poolSize / 2);
}

/** Folds one request outcome in. `failed`: connection failure, timeout or 5xx. */
export function recordOutcome(o: Outlier, failed: boolean, cfg: EjectConfig, now: number, canEject: boolean): Outlier {
  if (!failed) return o.consecutiveFailures === 0 ? o : { ...o, consecutiveFailures: 0 };
  const consecutiveFailures = o.consecutiveFailures + 1;
  const threshold = cfg.consecutiveFailures > 0 && consecutiveFailures >= cfg.consecutiveFailures;
  if (!threshold || isEjected(o, now) || !canEject) return { ...o, consecutiveFailures };
  const timesEjected = o.timesEjected + 1;
  const ejectedUntil = now + cfg.baseTime * timesEjected;
  return { consecutiveFailures: 0, ejectedUntil, timesEjected, decayAt: ejectedUntil + cfg.baseTime };
}

/**
 * An active probe passed: the backend answers again, so a passive ejection ends
 * now instead of at `ejectedUntil` (Envoy's successful_active_health_check_uneject_host,
 * on by default there too). Without this, a backend killed and restarted between
 * two probes stays ejected for the whole `baseTime` although every probe passes.
 * The multiplier stays: a backend that keeps getting ejected is ejected for longer.
 */
export function endEjection(o: Outlier): Outlier {
  return o.consecutiveFailures === 0 && o.ejectedUntil === 0 ? o : { ...o, consecutiveFailures: 0, ejectedUntil: 0 };
}

/** Called periodically: lets the ejection multiplier decay while the backend behaves. */
export function decayOutlier(o: Outlier, cfg: EjectConfig, now: number): Outlier {
  if (o.timesEjected === 0 || isEjected(o, now) || now < o.decayAt) return o;
  return { ...o, timesEjected: o.timesEjected - 1, decayAt: now + cfg.baseTime };
}
