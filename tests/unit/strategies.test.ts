import { describe, expect, test } from "bun:test";
import { Hash } from "../../src/strategies/hash.ts";
import { LeastLoad } from "../../src/strategies/least-load.ts";
import { PowerOfTwoChoices } from "../../src/strategies/p2c.ts";
import { RoundRobin } from "../../src/strategies/round-robin.ts";
import { Weighted } from "../../src/strategies/weighted.ts";
import { backend, ctx, seededRandom, tally } from "../helpers/backends.ts";

const picks = (n: number, pick: (i: number) => string | undefined) => Array.from({ length: n }, (_, i) => pick(i));

describe("round-robin", () => {
  test("cycles through backends in order", () => {
    const rr = new RoundRobin();
    const pool = ["a", "b", "c"].map((id) => backend(id));
    expect(picks(7, () => rr.pick(pool)?.id)).toEqual(["a", "b", "c", "a", "b", "c", "a"]);
  });

  test("skips an unavailable backend without breaking the cycle", () => {
    const rr = new RoundRobin();
    const pool = [backend("a"), backend("b", { available: false }), backend("c")];
    expect(picks(4, () => rr.pick(pool)?.id)).toEqual(["a", "c", "a", "c"]);
  });
});

describe("least-load", () => {
  test("picks the backend with the fewest requests in flight", () => {
    const pool = [backend("a", { inflight: 3 }), backend("b", { inflight: 1 }), backend("c", { inflight: 2 })];
    expect(new LeastLoad().pick(pool)?.id).toBe("b");
  });

  test("on equal in-flight counts, prefers a clearly faster backend", () => {
    const pool = [backend("slow", { responseTimeMs: 80, totalRequests: 50 }), backend("fast", { responseTimeMs: 10, totalRequests: 50 })];
    const ll = new LeastLoad();
    expect(picks(5, () => ll.pick(pool)?.id)).toEqual(["fast", "fast", "fast", "fast", "fast"]);
  });

  test("a few slow first responses (connection setup, cold JIT) do not decide the routing", () => {
    const pool = [backend("a", { responseTimeMs: 40, totalRequests: 1 }), backend("b", { responseTimeMs: 1, totalRequests: 1 }), backend("c", { responseTimeMs: 1, totalRequests: 1 })];
    const ll = new LeastLoad();
    expect(picks(3, () => ll.pick(pool)?.id)).toEqual(["a", "b", "c"]);
  });

  test("on equal counts and similar response times, goes round robin", () => {
    const pool = [backend("a", { responseTimeMs: 10 }), backend("b", { responseTimeMs: 11 }), backend("c", { responseTimeMs: 10.5 })];
    const ll = new LeastLoad();
    expect(picks(6, () => ll.pick(pool)?.id)).toEqual(["a", "b", "c", "a", "b", "c"]);
  });

  test("in-flight count outranks response time", () => {
    const pool = [backend("fast-busy", { inflight: 2, responseTimeMs: 1, totalRequests: 50 }), backend("slow-idle", { inflight: 0, responseTimeMs: 500, totalRequests: 50 })];
    expect(new LeastLoad().pick(pool)?.id).toBe("slow-idle");
  });
});

describe("weighted (smooth weighted round robin)", () => {
  test("weights 5,1,1 interleave as nginx does: a a b a c a a", () => {
    const w = new Weighted();
    const pool = [backend("a", { weight: 5 }), backend("b", { weight: 1 }), backend("c", { weight: 1 })];
    expect(picks(7, () => w.pick(pool)?.id).join(" ")).toBe("a a b a c a a");
  });

  test("honours weights within 1% over many picks", () => {
    const w = new Weighted();
    const weights = { a: 1, b: 2, c: 3, d: 10 } as const;
    const pool = Object.entries(weights).map(([id, weight]) => backend(id, { weight }));
    const n = 16_000;
    const counts = tally(picks(n, () => w.pick(pool)?.id));
    for (const [id, weight] of Object.entries(weights)) {
      const share = (counts[id] ?? 0) / n;
      expect(Math.abs(share - weight / 16)).toBeLessThan(0.01);
    }
  });

  test("a weight of 0 receives nothing", () => {
    const w = new Weighted();
    const pool = [backend("a", { weight: 0 }), backend("b", { weight: 1 })];
    expect(new Set(picks(20, () => w.pick(pool)?.id))).toEqual(new Set(["b"]));
  });
});

describe("p2c (power of two choices)", () => {
  test("of two backends, always takes the less loaded one", () => {
    const p2c = new PowerOfTwoChoices(seededRandom(1));
    const pool = [backend("busy", { inflight: 5 }), backend("idle", { inflight: 1 })];
    expect(new Set(picks(50, () => p2c.pick(pool)?.id))).toEqual(new Set(["idle"]));
  });

  test("never picks the most loaded of three (it always loses its comparison)", () => {
    const p2c = new PowerOfTwoChoices(seededRandom(7));
    const pool = [backend("a", { inflight: 1 }), backend("b", { inflight: 2 }), backend("worst", { inflight: 9 })];
    const counts = tally(picks(3000, () => p2c.pick(pool)?.id));
    expect(counts.worst).toBeUndefined();
    // a wins both comparisons it is in (2/3 of pairs), b wins only against worst (1/3).
    expect((counts.a ?? 0) / 3000).toBeCloseTo(2 / 3, 1);
  });

  test("works with one available backend", () => {
    const pool = [backend("a", { available: false }), backend("b")];
    expect(new PowerOfTwoChoices(seededRandom()).pick(pool)?.id).toBe("b");
  });
});

describe("hash (weighted rendezvous)", () => {
  const ten = Array.from({ length: 10 }, (_, i) => backend(`b${i}`));
  const keys = Array.from({ length: 10_000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);

  test("the same client always lands on the same backend", () => {
    const h = new Hash("ip");
    const first = h.pick(ten, ctx("192.0.2.7"))?.id;
    for (let i = 0; i < 20; i++) expect(h.pick(ten, ctx("192.0.2.7"))?.id).toBe(first);
  });

  test("clients spread evenly: each of 10 backends gets 10% ± 1.5%", () => {
    const h = new Hash("ip");
    const counts = tally(keys.map((k) => h.pick(ten, ctx(k))?.id));
    for (const b of ten) expect(Math.abs((counts[b.id] ?? 0) / keys.length - 0.1)).toBeLessThan(0.015);
  });

  test("when one of 10 backends leaves, only its own clients move (about 10%)", () => {
    const h = new Hash("ip");
    const before = keys.map((k) => h.pick(ten, ctx(k))?.id);
    const nine = ten.filter((b) => b.id !== "b3");
    const after = keys.map((k) => h.pick(nine, ctx(k))?.id);
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      if (before[i] === after[i]) continue;
      moved++;
      expect(before[i]).toBe("b3"); // nobody else's client moved
    }
    expect(moved / keys.length).toBeGreaterThan(0.085);
    expect(moved / keys.length).toBeLessThan(0.115);
  });

  test("an unavailable backend's clients move, and come back when it does", () => {
    const h = new Hash("ip");
    const owner = h.pick(ten, ctx("198.51.100.1"))!;
    const withoutOwner = ten.map((b) => (b.id === owner.id ? { ...b, available: false } : b));
    expect(h.pick(withoutOwner, ctx("198.51.100.1"))?.id).not.toBe(owner.id);
    expect(h.pick(ten, ctx("198.51.100.1"))?.id).toBe(owner.id);
  });

  test("keys on a header when configured, falling back to the client IP", () => {
    const h = new Hash("header:X-User");
    const a = h.pick(ten, ctx("203.0.113.1", { "x-user": "alice" }))?.id;
    expect(h.pick(ten, ctx("203.0.113.99", { "x-user": "alice" }))?.id).toBe(a);
    expect(h.pick(ten, ctx("203.0.113.1"))?.id).toBe(new Hash("ip").pick(ten, ctx("203.0.113.1"))?.id);
  });

  test("weights shift the share: weight 3 gets about three times weight 1", () => {
    const h = new Hash("ip");
    const pool = [backend("heavy", { weight: 3 }), backend("light", { weight: 1 })];
    const counts = tally(keys.map((k) => h.pick(pool, ctx(k))?.id));
    expect((counts.heavy ?? 0) / keys.length).toBeCloseTo(0.75, 1);
  });
});
