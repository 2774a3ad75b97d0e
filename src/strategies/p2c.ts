import type { BackendView, Strategy } from "../types.ts";
import { compareLoad } from "./compare.ts";

/**
 * Power of two choices (Mitzenmacher 2001): sample two distinct available
 * backends at random and keep the less loaded. Nearly as good as least-load,
 * without herding onto one backend when many balancers share stale counts.
 * `random` returns [0, 1) and is injectable so tests are deterministic.
 */
export class PowerOfTwoChoices implements Strategy {
  readonly name = "p2c";
  readonly #random: () => number;

  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  pick(pool: readonly BackendView[]): BackendView | undefined {
    let available = 0;
    for (const b of pool) if (b.available) available++;
    if (available <= 1) return pool.find((b) => b.available);
    const first = Math.floor(this.#random() * available);
    // Second choice drawn from the remaining n-1, shifted past the first: always distinct.
    let second = Math.floor(this.#random() * (available - 1));
    if (second >= first) second++;
    const a = nthAvailable(pool, first);
    const b = nthAvailable(pool, second);
    return compareLoad(b, a) < 0 ? b : a;
  }
}

function nthAvailable(pool: readonly BackendView[], n: number): BackendView {
  for (const backend of pool) {
    if (backend.available && n-- === 0) return backend;
  }
  throw new Error("unreachable: n is below the available count");
}
