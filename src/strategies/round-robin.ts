import type { BackendView, Strategy } from "../types.ts";

/** Each available backend in turn, skipping unavailable ones. */
export class RoundRobin implements Strategy {
  readonly name = "round-robin";
  #next = 0;

  pick(pool: readonly BackendView[]): BackendView | undefined {
    const n = pool.length;
    for (let i = 0; i < n; i++) {
      const index = (this.#next + i) % n;
      const backend = pool[index] as BackendView;
      if (backend.available) {
        this.#next = (index + 1) % n;
        return backend;
      }
    }
    return undefined;
  }
}
