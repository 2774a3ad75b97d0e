/**
 * Envoy's retry budget: retries in flight at most max(`min`, `ratio` ×
 * requests in flight), so that retries cannot multiply the load on a failing
 * pool. A retry over the budget waits (first in, first out, up to
 * `proxy.queue.timeout`) for one in flight to end instead of failing at once:
 * a backend dying with a dozen requests on it resets them all in the same
 * instant, and their retries are failover, not a storm. While the whole pool
 * fails, the waiting retries time out and the extra load stays capped.
 */
import type { BackendView } from "../types.ts";
import { SlotQueue } from "./queue.ts";

export class RetryBudget {
  /** Requests now on a retry. */
  inFlight = 0;
  readonly #waiting: SlotQueue;

  constructor(queue: { readonly size: number; readonly timeout: number }) {
    this.#waiting = new SlotQueue(queue);
  }

  configure(queue: { readonly size: number; readonly timeout: number }): void {
    this.#waiting.configure(queue);
  }

  /** Counts one more retry in flight when the budget allows it. */
  take(backends: readonly BackendView[], budget: { readonly ratio: number; readonly min: number }): boolean {
    let inflight = 0;
    for (const b of backends) inflight += b.inflight;
    if (this.inFlight >= Math.max(budget.min, budget.ratio * inflight)) return false;
    this.inFlight++;
    return true;
  }

  /** A request that was retrying ended: the oldest retry waiting may go. */
  release(): void {
    this.inFlight--;
    this.#waiting.wakeOne();
  }

  /** Waits for room in the budget: `wake` tries to take it (false: wait on), `expire` after the timeout. */
  wait(wake: () => boolean, expire: () => void): boolean {
    return this.#waiting.wait(wake, expire);
  }

  close(): void {
    this.#waiting.close();
  }
}
