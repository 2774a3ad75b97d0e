/**
 * What an attempt did to its backend, recorded the same way by both engines:
 * the response's status class or the failure (for `/lb-metrics`, one count per
 * attempt), `failedRequests`, and the outcome passive ejection folds in. The
 * client's own mistakes never come here.
 */
import { countsAsFailure, type UpstreamFailure } from "../decide/retry.ts";
import { bump, OUT_TIMEOUT, OUT_UPSTREAM_ERROR, statusClass } from "../runtime/outcomes.ts";
import type { Logger } from "../runtime/log.ts";
import type { Member, Pool } from "../runtime/pool.ts";

export function recordResponse(pool: Pool, log: Logger, backend: Member, status: number): void {
  bump(backend.outcomes, statusClass(status));
  const failed = countsAsFailure(status);
  if (failed) backend.failedRequests++;
  if (pool.recordOutcome(backend, failed)) log.warn(`${backend.url} ejected after consecutive failures`);
}

export function recordFailure(pool: Pool, log: Logger, backend: Member, failure: UpstreamFailure): void {
  bump(backend.outcomes, failure === "timeout" ? OUT_TIMEOUT : OUT_UPSTREAM_ERROR);
  backend.failedRequests++;
  if (pool.recordOutcome(backend, true)) log.warn(`${backend.url} ejected after consecutive failures`);
}
