import type { BackendView, Strategy } from "../types.ts";
import { compareLoad } from "./compare.ts";

/**
 * Lowest in-flight count; ties go to the lower response-time EWMA, then round
 * robin (the scan starts after the last pick, and the first best wins).
 */
export class LeastLoad implements Strategy {
  readonly name = "least-load";
  #next = 0;

  pick(pool: readonly BackendView[]): BackendView | undefined {
    const n = pool.length;
    let best: BackendView | undefined;
    let bestIndex = 0;
    for (let i = 0; i < n; i++) {
      const index = (this.#next + i) % n;
      const backend = pool[index] as BackendView;
      if (backend.available && (best === undefined || compareLoad(backend, best) < 0)) {
        best = backend;
        bestIndex = index;
      }
    }
    if (best) this.#next = (bestIndex + 1) % n;
    return best;
  }
}
