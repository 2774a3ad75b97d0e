/**
 * What an attempt did to its backend, recorded the same way by both engines:
 * the response's status class or the failure (for `/lb-metrics`, one count per
 * attempt), `failedRequests`, and the outcome the backend's circuit folds in
 * (decide/ejection.ts). The client's own mistakes never come here.
 */
import { countsAsFailure, type UpstreamFailure } from "../decide/retry.ts";
import { bump, OUT_TIMEOUT, OUT_UPSTREAM_ERROR, statusClass } from "../runtime/outcomes.ts";
import type { Logger } from "../runtime/log.ts";
import type { CircuitChange, Member, Pool } from "../runtime/pool.ts";

export function recordResponse(pool: Pool, log: Logger, backend: Member, status: number): void {
  bump(backend.outcomes, statusClass(status));
  const change = pool.recordOutcome(backend, countsAsFailure(status));
  if (change) logCircuit(log, backend, change);
}

export function recordFailure(pool: Pool, log: Logger, backend: Member, failure: UpstreamFailure): void {
  bump(backend.outcomes, failure === "timeout" ? OUT_TIMEOUT : OUT_UPSTREAM_ERROR);
  const change = pool.recordOutcome(backend, true);
  if (change) logCircuit(log, backend, change);
}

const WHY: Record<string, string> = {
  "consecutive-failures": "consecutive failures",
  "error-rate": "error rate",
  "trial-failed": "a trial request failed",
};

function logCircuit(log: Logger, backend: Member, change: CircuitChange): void {
  if (change.to === "open") {
    const seconds = ((change.openMs ?? 0) / 1000).toFixed(1);
    log.warn(`${backend.url} ejected after ${WHY[change.reason ?? ""] ?? "failures"} (circuit open for ${seconds} s)`);
  } else if (change.to === "closed") {
    log.info(`${backend.url} is back in rotation: its trial requests succeeded (circuit closed)`);
  }
}
