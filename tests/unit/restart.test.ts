import { describe, expect, test } from "bun:test";
import { afterExit, DEFAULT_RESTART_POLICY as policy, NO_CRASHES, type CrashStreak } from "../../src/decide/restart.ts";

describe("restart backoff", () => {
  test("delays grow ×1.5 from 100 ms up to 15 s", () => {
    let streak: CrashStreak = NO_CRASHES;
    const delays: number[] = [];
    for (let i = 0; i < 10; i++) {
      const next = afterExit(streak, 0, { ...policy, maxRestarts: 100 });
      if (next.kind !== "restart") throw new Error("expected a restart");
      delays.push(next.delay);
      streak = next.streak;
    }
    expect(delays.slice(0, 4)).toEqual([100, 150, 225, 338]);
    let capped = streak;
    for (let i = 0; i < 20; i++) {
      const next = afterExit(capped, 0, { ...policy, maxRestarts: 100 });
      if (next.kind === "restart") capped = next.streak;
    }
    expect(capped.nextDelay).toBe(15_000);
  });

  test("30 s of health resets the streak", () => {
    const crashed = afterExit(afterExit(NO_CRASHES, 0, policy).streak, 0, policy);
    if (crashed.kind !== "restart") throw new Error("expected a restart");
    expect(crashed.delay).toBe(150);
    expect(afterExit(crashed.streak, 30_000, policy)).toEqual({ kind: "restart", delay: 100, streak: { crashes: 1, nextDelay: 100 } });
  });

  test("after maxRestarts quick deaths the slot is failed, not restarted forever", () => {
    let streak: CrashStreak = NO_CRASHES;
    for (let i = 0; i < policy.maxRestarts; i++) {
      const next = afterExit(streak, 1_000, policy);
      expect(next.kind).toBe("restart");
      streak = next.streak;
    }
    expect(afterExit(streak, 1_000, policy).kind).toBe("failed");
  });
});
