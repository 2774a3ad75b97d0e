/**
 * Which backend a request goes to when things go wrong: retries never return
 * to a backend that failed the request, ejected-but-healthy backends are used
 * before giving up, and slow start keeps the warm backends' shares even.
 */
import { describe, expect, test } from "bun:test";
import { STRATEGY_NAMES } from "../../src/config/schema.ts";
import { selectBackend } from "../../src/proxy/select.ts";
import { pickEligible } from "../../src/strategies/eligible.ts";
import { createStrategy } from "../../src/strategies/index.ts";
import { RoundRobin } from "../../src/strategies/round-robin.ts";
import { warmupShare, withSlowStart } from "../../src/strategies/slow-start.ts";
import type { Backend } from "../../src/types.ts";
import { backend, ctx, seededRandom, tally } from "../helpers/backends.ts";

const ejected = (id: string) => backend(id, { available: false, state: "healthy" });

describe("selectBackend", () => {
  test.each(STRATEGY_NAMES)("%s: a retry never goes back to a backend that already failed this request", (name) => {
    const strategy = createStrategy({ kind: "builtin", name, key: "ip" });
    const pool = ["a", "b", "c"].map((id) => backend(id));
    for (let i = 0; i < 200; i++) {
      const first = selectBackend(strategy, pool, ctx(`10.0.0.${i}`), undefined) as Backend;
      const second = selectBackend(strategy, pool, ctx(`10.0.0.${i}`), [first]) as Backend;
      const third = selectBackend(strategy, pool, ctx(`10.0.0.${i}`), [first, second]) as Backend;
      expect(new Set([first.id, second.id, third.id]).size).toBe(3);
      expect(selectBackend(strategy, pool, ctx(`10.0.0.${i}`), [first, second, third])).toBeUndefined();
    }
  });

  test("when every healthy backend is ejected, an ejected one is used rather than none", () => {
    const pool = [ejected("a"), backend("down", { available: false, state: "unhealthy" }), ejected("b")];
    const rr = new RoundRobin();
    const picks = Array.from({ length: 10 }, () => selectBackend(rr, pool, ctx(), undefined)?.id);
    expect(new Set(picks)).toEqual(new Set(["a", "b"]));
  });

  test("an available backend is preferred to an ejected one", () => {
    const pool = [ejected("a"), backend("b"), ejected("c")];
    const rr = new RoundRobin();
    const picks = Array.from({ length: 10 }, () => selectBackend(rr, pool, ctx(), undefined)?.id);
    expect(new Set(picks)).toEqual(new Set(["b"]));
  });

  test("the retry after a dead backend goes to the ejected one that is back (two backends restarting in turn)", () => {
    const dead = backend("b"); // not yet seen down by the probes: still available
    const back = ejected("a"); // ejected while it was down, restarted since
    expect(selectBackend(new RoundRobin(), [back, dead], ctx(), undefined)?.id).toBe("b");
    expect(selectBackend(new RoundRobin(), [back, dead], ctx(), [dead])?.id).toBe("a");
  });

  test("a retry, with nothing healthy left, tries a backend probes call unhealthy; a first attempt does not", () => {
    const failed = backend("a");
    const down = backend("b", { available: false, state: "unhealthy" });
    const stopped = backend("c", { available: false, state: "stopped" });
    expect(selectBackend(new RoundRobin(), [failed, down, stopped], ctx(), [failed])?.id).toBe("b");
    expect(selectBackend(new RoundRobin(), [down, stopped], ctx(), undefined)).toBeUndefined();
    expect(selectBackend(new RoundRobin(), [failed, down, stopped], ctx(), [failed, down])).toBeUndefined();
  });

  test("nothing actively healthy: no backend (the edge answers 503)", () => {
    const pool = [backend("a", { available: false, state: "unhealthy" }), backend("b", { available: false, state: "draining" }), backend("c", { available: false, state: "starting" })];
    expect(selectBackend(new RoundRobin(), pool, ctx(), undefined)).toBeUndefined();
  });
});

describe("pickEligible", () => {
  test("returns the pool's own object, not the overriding copy", () => {
    const pool = [ejected("a")];
    expect(pickEligible(new RoundRobin(), pool, ctx(), () => true)).toBe(pool[0]);
  });

  test("round robin keeps even turns while one backend is left out of some picks", () => {
    const pool = ["a", "b", "c", "d"].map((id) => backend(id));
    const rr = new RoundRobin();
    const random = seededRandom(7);
    const picks = Array.from({ length: 40_000 }, () => {
      const skipA = random() < 0.5;
      return pickEligible(rr, pool, ctx(), (b) => !(skipA && b.id === "a"))?.id;
    });
    const counts = tally(picks);
    for (const id of ["b", "c", "d"]) expect(Math.abs((counts[id] ?? 0) - (counts.b ?? 0))).toBeLessThan(200);
  });
});

describe("slow start", () => {
  test("the share ramps from 10% to 100% over the slow-start period", () => {
    expect(warmupShare(3000, 3000)).toBe(0.1);
    expect(warmupShare(1500, 3000)).toBe(0.5);
    expect(warmupShare(300, 3000)).toBeCloseTo(0.9);
    expect(warmupShare(0, 3000)).toBe(1);
    expect(warmupShare(1000, 0)).toBe(1);
  });

  test("round robin over four idle backends, one warming: the warm ones keep even shares, the warming one its ramp", () => {
    const now = 1_000_000;
    // Half-way through a 3 s slow start: a share of 0.5 of what it would otherwise get.
    const pool = [backend("w", { warmUntil: now + 1500 }), backend("a"), backend("b"), backend("c")];
    const strategy = withSlowStart(new RoundRobin(), { periodMs: 3000, now: () => now, random: seededRandom(1) });
    const counts = tally(Array.from({ length: 60_000 }, () => strategy.pick(pool, ctx())?.id));
    const warm = [counts.a ?? 0, counts.b ?? 0, counts.c ?? 0];
    expect(Math.max(...warm) - Math.min(...warm)).toBeLessThan(60_000 * 0.01);
    // Round robin gives w its turn half of the time: 0.5 / 3.5 of the picks.
    expect((counts.w ?? 0) / 60_000).toBeCloseTo(0.5 / 3.5, 1);
  });

  test("a warm pool is passed straight through, a finished slow start counts as warm", () => {
    const now = 5000;
    const pool = [backend("a", { warmUntil: 4000 }), backend("b")];
    const strategy = withSlowStart(new RoundRobin(), { periodMs: 3000, now: () => now, random: () => 0.99 });
    expect(tally(Array.from({ length: 100 }, () => strategy.pick(pool, ctx())?.id))).toEqual({ a: 50, b: 50 });
  });

  test("under load a warming backend takes its share of the warm ones' in-flight count, not only of the picks", () => {
    const now = 0;
    // 2.7 s before the end of a 3 s slow start: a share of 0.1. The warm ones carry 20 each.
    const warming = backend("w", { warmUntil: 2700 });
    const pool = [warming, backend("a", { inflight: 20 }), backend("b", { inflight: 20 })];
    const strategy = withSlowStart(new RoundRobin(), { periodMs: 3000, now: () => now, random: () => 0.99 });
    // Below 0.1 × 20 = 2 in flight it takes its turn (round robin: one in three); at 2 it is held back.
    expect(tally(Array.from({ length: 30 }, () => strategy.pick(pool, ctx())?.id)).w).toBe(10);
    warming.inflight = 2;
    expect(tally(Array.from({ length: 30 }, () => strategy.pick(pool, ctx())?.id)).w).toBeUndefined();
  });

  test("when only warming backends are available, none is held back", () => {
    const now = 0;
    const pool = [backend("w1", { warmUntil: 3000 }), backend("w2", { warmUntil: 3000 })];
    const strategy = withSlowStart(new RoundRobin(), { periodMs: 3000, now: () => now, random: () => 0.99 });
    expect(tally(Array.from({ length: 100 }, () => strategy.pick(pool, ctx())?.id))).toEqual({ w1: 50, w2: 50 });
  });
});
