import type { BackendView, Strategy } from "../types.ts";

/**
 * Smooth weighted round robin, as nginx does it (ngx_http_upstream_round_robin.c,
 * commit 52327e0): every pick adds each backend's weight to its current value,
 * picks the largest, and subtracts the total from the winner. Weights 5,1,1 give
 * a a b a c a a — spread out, never bursts. Weight 0 receives nothing.
 */
export class Weighted implements Strategy {
  readonly name = "weighted";
  readonly #current = new Map<string, number>();

  pick(pool: readonly BackendView[]): BackendView | undefined {
    let total = 0;
    let best: BackendView | undefined;
    let bestCurrent = -Infinity;
    for (const backend of pool) {
      if (!backend.available || backend.weight <= 0) continue;
      const current = (this.#current.get(backend.id) ?? 0) + backend.weight;
      this.#current.set(backend.id, current);
      total += backend.weight;
      if (current > bestCurrent) {
        best = backend;
        bestCurrent = current;
      }
    }
    if (best) this.#current.set(best.id, bestCurrent - total);
    if (this.#current.size > pool.length * 2) this.#forgetGone(pool);
    return best;
  }

  /** Backends that left the pool must not keep their slot forever. */
  #forgetGone(pool: readonly BackendView[]): void {
    const ids = new Set(pool.map((b) => b.id));
    for (const id of this.#current.keys()) if (!ids.has(id)) this.#current.delete(id);
  }
}
