/**
 * The contract every strategy honours, run against each built-in one before
 * its own table tests: nothing to pick → undefined; never an unavailable or
 * draining backend; load spread over equal backends; survives pool changes.
 */
import { describe, expect, test } from "bun:test";
import { STRATEGY_NAMES } from "../../src/config/schema.ts";
import { createStrategy } from "../../src/strategies/index.ts";
import type { Strategy } from "../../src/types.ts";
import { backend, ctx, tally } from "../helpers/backends.ts";

const make = (name: (typeof STRATEGY_NAMES)[number]): Strategy => createStrategy({ kind: "builtin", name, key: "ip" });

describe.each(STRATEGY_NAMES)("strategy %s honours the contract", (name) => {
  test("an empty pool gives no backend", () => {
    expect(make(name).pick([], ctx())).toBeUndefined();
  });

  test("a pool with nothing available gives no backend", () => {
    const pool = [backend("a", { available: false, state: "unhealthy" }), backend("b", { available: false, state: "draining" })];
    expect(make(name).pick(pool, ctx())).toBeUndefined();
  });

  test("never picks an unhealthy or draining backend", () => {
    const strategy = make(name);
    const pool = [
      backend("down", { available: false, state: "unhealthy" }),
      backend("a"),
      backend("draining", { available: false, state: "draining" }),
      backend("b"),
      backend("starting", { available: false, state: "starting" }),
    ];
    const picks = Array.from({ length: 500 }, (_, i) => strategy.pick(pool, ctx(`10.0.${i >> 8}.${i & 255}`))?.id);
    expect(new Set(picks)).toEqual(new Set(["a", "b"]));
  });

  test("spreads requests over equal idle backends", () => {
    const strategy = make(name);
    const pool = ["a", "b", "c", "d"].map((id) => backend(id));
    const picks = Array.from({ length: 4000 }, (_, i) => strategy.pick(pool, ctx(`10.1.${i >> 8}.${i & 255}`))?.id);
    const counts = tally(picks);
    for (const id of ["a", "b", "c", "d"]) expect(counts[id] ?? 0).toBeGreaterThan(4000 * 0.15);
  });

  test("keeps working when backends join and leave between picks", () => {
    const strategy = make(name);
    let pool = ["a", "b", "c"].map((id) => backend(id));
    for (let i = 0; i < 50; i++) strategy.pick(pool, ctx(`10.2.0.${i}`));
    pool = [backend("c"), backend("d")];
    const picks = Array.from({ length: 200 }, (_, i) => strategy.pick(pool, ctx(`10.3.0.${i}`))?.id);
    expect(new Set(picks)).toEqual(new Set(["c", "d"]));
  });
});
