import { describe, expect, test } from "bun:test";
import { admit, emissionInterval, rateLimitKey, retryAfterSeconds } from "../../src/decide/rate-limit.ts";
import { MemoryRateLimiter } from "../../src/runtime/rate-limit.ts";

/** Replays request times (ms) through `admit` and returns which passed. */
function replay(times: number[], rps: number, burst: number): boolean[] {
  let tat: number | undefined;
  return times.map((now) => {
    const verdict = admit(tat, now, emissionInterval(rps), burst);
    tat = verdict.tat;
    return verdict.allowed;
  });
}

describe("GCRA admission", () => {
  test("a new key may send `burst` requests at once, then is refused", () => {
    expect(replay([0, 0, 0, 0, 0], 10, 3)).toEqual([true, true, true, false, false]);
  });

  test("after a refusal, one more passes exactly one interval after the burst", () => {
    let tat: number | undefined;
    for (let i = 0; i < 3; i++) tat = admit(tat, 0, 100, 3).tat;
    const refused = admit(tat, 0, 100, 3);
    expect(refused).toEqual({ allowed: false, tat: 300, retryAfterMs: 100 });
    expect(admit(tat, 99, 100, 3).allowed).toBe(false);
    expect(admit(tat, 100, 100, 3).allowed).toBe(true);
  });

  test("refused requests cost nothing: hammering does not push the key further back", () => {
    let tat: number | undefined;
    for (let now = 0; now < 100; now++) tat = admit(tat, now, 100, 1).tat;
    expect(tat).toBe(100); // one request passed at 0; 99 refused ones left the TAT alone
    expect(admit(tat, 100, 100, 1).allowed).toBe(true);
  });

  test("a steady client at exactly the rate always passes; one 2x over it gets half through", () => {
    const atRate = Array.from({ length: 1000 }, (_, i) => i * 100);
    expect(replay(atRate, 10, 1).every(Boolean)).toBe(true);
    const twiceOver = Array.from({ length: 1000 }, (_, i) => i * 50);
    const passed = replay(twiceOver, 10, 1).filter(Boolean).length;
    expect(passed).toBeGreaterThanOrEqual(499);
    expect(passed).toBeLessThanOrEqual(501);
  });

  test("over any second, at most rate + burst pass", () => {
    // 1,000 requests spread over 1 s at 5 r/s with burst 4.
    const times = Array.from({ length: 1000 }, (_, i) => i);
    expect(replay(times, 5, 4).filter(Boolean).length).toBe(8); // 4 at once, then at 200, 400, 600, 800
  });

  test("an idle key refills up to burst, not beyond", () => {
    let tat: number | undefined = admit(undefined, 0, 100, 2).tat;
    const later = [10_000, 10_000, 10_000].map((now) => {
      const v = admit(tat, now, 100, 2);
      tat = v.tat;
      return v.allowed;
    });
    expect(later).toEqual([true, true, false]);
  });
});

describe("rate limit keys and headers", () => {
  const headers = (values: Record<string, string>) => (name: string) => values[name.toLowerCase()] ?? null;

  test("by client IP, or by a header's value, falling back to the IP without it", () => {
    expect(rateLimitKey("ip", "10.0.0.1", headers({ "x-api-key": "k" }))).toBe("ip:10.0.0.1");
    expect(rateLimitKey("header:X-Api-Key", "10.0.0.1", headers({ "x-api-key": "k" }))).toBe("h:k");
    expect(rateLimitKey("header:X-Api-Key", "10.0.0.1", headers({}))).toBe("ip:10.0.0.1");
  });

  test("long header values are kept as a short hash, still one key per value", () => {
    const long = "k".repeat(8192);
    const key = rateLimitKey("header:X-Api-Key", "10.0.0.1", headers({ "x-api-key": long }));
    expect(key.length).toBeLessThan(20);
    expect(rateLimitKey("header:X-Api-Key", "10.0.0.2", headers({ "x-api-key": long }))).toBe(key);
    expect(rateLimitKey("header:X-Api-Key", "10.0.0.1", headers({ "x-api-key": `${long}x` }))).not.toBe(key);
  });

  test("Retry-After is whole seconds, at least 1", () => {
    expect(retryAfterSeconds(1)).toBe(1);
    expect(retryAfterSeconds(1000)).toBe(1);
    expect(retryAfterSeconds(1001)).toBe(2);
  });
});

describe("memory store", () => {
  test("keys are counted apart", () => {
    const limiter = new MemoryRateLimiter({ requestsPerSecond: 1, burst: 1 });
    expect(limiter.check("a").allowed).toBe(true);
    expect(limiter.check("a").allowed).toBe(false);
    expect(limiter.check("b").allowed).toBe(true);
    limiter.close();
  });

  test("the number of keys stays bounded under many distinct clients", () => {
    const limiter = new MemoryRateLimiter({ requestsPerSecond: 0.01, burst: 1 }, 1000);
    for (let i = 0; i < 10_000; i++) expect(limiter.check(`ip:${i}`).allowed).toBe(true);
    expect(limiter.size).toBeLessThanOrEqual(1000);
    // The newest keys are still remembered, so they stay limited.
    expect(limiter.check("ip:9999").allowed).toBe(false);
    limiter.close();
  });
});
