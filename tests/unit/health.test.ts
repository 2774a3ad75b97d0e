import { describe, expect, test } from "bun:test";
import { decayOutlier, endEjection, FRESH_OUTLIER, isEjected, mayEject, recordOutcome, type Outlier } from "../../src/decide/ejection.ts";
import { isHealthyStatus, nextHealth, type ProbeStreak } from "../../src/decide/health.ts";

const run = (start: ProbeStreak, results: boolean[], rise: number, fall: number) => {
  let s = start;
  return results.map((ok) => (s = nextHealth(s, ok, { rise, fall })).healthy);
};
const healthy: ProbeStreak = { healthy: true, count: 0 };
const unhealthy: ProbeStreak = { healthy: false, count: 0 };

describe("active health (rise/fall)", () => {
  test("a healthy backend goes unhealthy only after `fall` consecutive failures", () => {
    expect(run(healthy, [false, false], 1, 2)).toEqual([true, false]);
    expect(run(healthy, [false, false, false], 1, 3)).toEqual([true, true, false]);
  });

  test("a success in between resets the failure streak", () => {
    expect(run(healthy, [false, true, false, true, false], 1, 2)).toEqual([true, true, true, true, true]);
  });

  test("an unhealthy backend comes back after `rise` consecutive successes", () => {
    expect(run(unhealthy, [true], 1, 2)).toEqual([true]);
    expect(run(unhealthy, [true, false, true, true, true], 3, 2)).toEqual([false, false, false, false, true]);
  });

  test("2xx and 3xx are healthy answers, 4xx and 5xx are not", () => {
    expect([200, 204, 301, 399, 400, 404, 500, 503].map(isHealthyStatus)).toEqual([true, true, true, true, false, false, false, false]);
  });
});

describe("passive ejection", () => {
  const cfg = { consecutiveFailures: 3, baseTime: 10_000 };
  const fail = (o: Outlier, now: number, canEject = true) => recordOutcome(o, true, cfg, now, canEject);

  test("three failures in a row eject for baseTime", () => {
    let o = FRESH_OUTLIER;
    o = fail(fail(o, 0), 1);
    expect(isEjected(o, 2)).toBe(false);
    o = fail(o, 2);
    expect(isEjected(o, 3)).toBe(true);
    expect(o.ejectedUntil).toBe(10_002);
    expect(isEjected(o, 10_002)).toBe(false);
  });

  test("a success resets the streak", () => {
    let o = fail(fail(FRESH_OUTLIER, 0), 1);
    o = recordOutcome(o, false, cfg, 2, true);
    o = fail(fail(o, 3), 4);
    expect(isEjected(o, 5)).toBe(false);
  });

  test("each new ejection lasts baseTime × times ejected", () => {
    let o = fail(fail(fail(FRESH_OUTLIER, 0), 0), 0);
    expect(o.ejectedUntil).toBe(10_000);
    o = fail(fail(fail(o, 10_000), 10_000), 10_000);
    expect(o.timesEjected).toBe(2);
    expect(o.ejectedUntil).toBe(30_000);
  });

  test("the multiplier decays by one per baseTime of good behaviour", () => {
    let o = fail(fail(fail(FRESH_OUTLIER, 0), 0), 0); // ejected until 10 000, decays from 20 000
    o = decayOutlier(o, cfg, 15_000);
    expect(o.timesEjected).toBe(1);
    o = decayOutlier(o, cfg, 20_000);
    expect(o.timesEjected).toBe(0);
  });

  test("no ejection when the pool may not lose another backend", () => {
    const o = fail(fail(fail(FRESH_OUTLIER, 0, false), 0, false), 0, false);
    expect(isEjected(o, 1)).toBe(false);
  });

  test("a passing active probe ends an ejection at once; the multiplier stays", () => {
    const o = endEjection(fail(fail(fail(FRESH_OUTLIER, 0), 0), 0));
    expect(isEjected(o, 1)).toBe(false);
    expect(o.timesEjected).toBe(1);
    expect(fail(fail(fail(o, 2), 2), 2).ejectedUntil).toBe(20_002);
  });

  test("at most half the pool is ejected", () => {
    expect(mayEject(0, 1)).toBe(false); // a single backend is never ejected
    expect(mayEject(0, 2)).toBe(true);
    expect(mayEject(1, 2)).toBe(false);
    expect(mayEject(1, 4)).toBe(true);
    expect(mayEject(2, 4)).toBe(false);
  });

  test("consecutiveFailures 0 turns passive ejection off", () => {
    let o = FRESH_OUTLIER;
    for (let i = 0; i < 10; i++) o = recordOutcome(o, true, { consecutiveFailures: 0, baseTime: 1000 }, i, true);
    expect(isEjected(o, 10)).toBe(false);
  });
});
