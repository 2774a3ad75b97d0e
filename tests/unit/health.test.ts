import { describe, expect, test } from "bun:test";
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
