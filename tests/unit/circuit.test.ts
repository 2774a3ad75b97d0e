/**
 * Passive health as one circuit per backend (decide/ejection.ts): the pure
 * transitions, and the pool turning them into availability and trial slots.
 */
import { describe, expect, test } from "bun:test";
import { advanceOutlier, FRESH_OUTLIER, isEjected, mayEject, type Outlier, probePassed, recordOutcome, trialSlots } from "../../src/decide/ejection.ts";
import { OUT_EJECTIONS } from "../../src/runtime/outcomes.ts";
import { Pool } from "../../src/runtime/pool.ts";
import { selectBackend } from "../../src/proxy/select.ts";
import { createStrategy } from "../../src/strategies/index.ts";

const cfg = { consecutiveFailures: 3, baseTime: 10_000, errorRate: 0.5, minRequests: 20, window: 10_000, trials: 3 };
const quiet = { requests: 0, failures: 0 };
const fail = (o: Outlier, now: number, canEject = true) => recordOutcome(o, true, quiet, cfg, now, canEject);
const pass = (o: Outlier, now: number) => recordOutcome(o, false, quiet, cfg, now, true);
const failTimes = (o: Outlier, n: number, now: number) => {
  for (let i = 0; i < n; i++) o = fail(o, now);
  return o;
};

describe("circuit: closed → open", () => {
  test("three failures in a row open it for baseTime, then it turns half-open", () => {
    let o = failTimes(FRESH_OUTLIER, 2, 0);
    expect(o.circuit).toBe("closed");
    o = fail(o, 2);
    expect(o.circuit).toBe("open");
    expect(o.reason).toBe("consecutive-failures");
    expect(o.openUntil).toBe(10_002);
    expect(advanceOutlier(o, cfg, 10_001).circuit).toBe("open");
    expect(advanceOutlier(o, cfg, 10_002).circuit).toBe("half-open");
  });

  test("a success resets the streak", () => {
    let o = pass(failTimes(FRESH_OUTLIER, 2, 0), 2);
    o = failTimes(o, 2, 3);
    expect(o.circuit).toBe("closed");
  });

  test("an error rate over the window opens it although failures never come three in a row", () => {
    const rate = { ...cfg, consecutiveFailures: 0 };
    // 20 requests in the window, every other one failed: 50 % ≥ errorRate 0.5.
    const o = recordOutcome(FRESH_OUTLIER, true, { requests: 20, failures: 10 }, rate, 5, true);
    expect(o.circuit).toBe("open");
    expect(o.reason).toBe("error-rate");
    // Below the rate, or with too few requests, it stays closed.
    expect(recordOutcome(FRESH_OUTLIER, true, { requests: 20, failures: 9 }, rate, 5, true).circuit).toBe("closed");
    expect(recordOutcome(FRESH_OUTLIER, true, { requests: 19, failures: 19 }, rate, 5, true).circuit).toBe("closed");
    // errorRate 0 turns it off.
    expect(recordOutcome(FRESH_OUTLIER, true, { requests: 100, failures: 100 }, { ...rate, errorRate: 0 }, 5, true).circuit).toBe("closed");
  });

  test("it does not open when the pool may not lose another backend", () => {
    expect(failTimes(FRESH_OUTLIER, 5, 0).circuit).toBe("open");
    let o = FRESH_OUTLIER;
    for (let i = 0; i < 5; i++) o = fail(o, 0, false);
    expect(o.circuit).toBe("closed");
  });

  test("consecutiveFailures 0 and errorRate 0 turn passive health off", () => {
    const off = { ...cfg, consecutiveFailures: 0, errorRate: 0 };
    let o = FRESH_OUTLIER;
    for (let i = 0; i < 50; i++) o = recordOutcome(o, true, { requests: i + 1, failures: i + 1 }, off, i, true);
    expect(isEjected(o)).toBe(false);
  });

  test("at most half the pool is open", () => {
    expect(mayEject(0, 1)).toBe(false); // a single backend is never ejected
    expect(mayEject(0, 2)).toBe(true);
    expect(mayEject(1, 2)).toBe(false);
    expect(mayEject(1, 4)).toBe(true);
    expect(mayEject(2, 4)).toBe(false);
  });
});

describe("circuit: open → half-open → closed or open again", () => {
  const opened = failTimes(FRESH_OUTLIER, 3, 0); // open until 10 000

  test("outcomes of requests that reach an open backend change nothing", () => {
    expect(pass(opened, 1)).toBe(opened);
    expect(fail(opened, 1)).toBe(opened);
  });

  test("a passing probe turns it half-open at once; a closed circuit only forgets its failures", () => {
    const half = probePassed(opened);
    expect(half.circuit).toBe("half-open");
    expect(half.timesEjected).toBe(1);
    const closed = probePassed(failTimes(FRESH_OUTLIER, 2, 0));
    expect(closed.circuit).toBe("closed");
    expect(closed.consecutiveFailures).toBe(0);
  });

  test("`trials` successes close it", () => {
    let o = probePassed(opened);
    o = pass(pass(o, 1), 2);
    expect(o.circuit).toBe("half-open");
    expect(o.trialsPassed).toBe(2);
    o = pass(o, 3);
    expect(o.circuit).toBe("closed");
    expect(o.consecutiveFailures).toBe(0);
  });

  test("a failed trial opens it again for baseTime × times opened", () => {
    const o = fail(pass(probePassed(opened), 1), 2);
    expect(o.circuit).toBe("open");
    expect(o.reason).toBe("trial-failed");
    expect(o.timesEjected).toBe(2);
    expect(o.openUntil).toBe(20_002);
  });

  test("a failed trial that may not open it starts the trials over", () => {
    const o = recordOutcome(pass(probePassed(opened), 1), true, quiet, cfg, 2, false);
    expect(o.circuit).toBe("half-open");
    expect(o.trialsPassed).toBe(0);
  });

  test("the multiplier decays by one per baseTime closed", () => {
    let o = probePassed(opened);
    o = pass(pass(pass(o, 1), 1), 1000); // closed at 1000, decays from 11 000
    expect(advanceOutlier(o, cfg, 10_999).timesEjected).toBe(1);
    o = advanceOutlier(o, cfg, 11_000);
    expect(o.timesEjected).toBe(0);
    expect(failTimes(o, 3, 12_000).openUntil).toBe(22_000);
  });

  test("trial slots: trials shared by the processes, within the backend's own limit", () => {
    expect(trialSlots(3, 1, 0)).toBe(3);
    expect(trialSlots(3, 2, 0)).toBe(2);
    expect(trialSlots(3, 8, 0)).toBe(1);
    expect(trialSlots(3, 1, 2)).toBe(2);
  });
});

describe("the pool applies the circuit", () => {
  const health = { path: "/health", interval: 5000, timeout: 2000, rise: 1, fall: 2, eject: cfg };
  const backend = (port: number) => ({ url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, port, weight: 1, maxConnections: 0 });

  test("open: unavailable; half-open: available with `trials` slots; closed: no limit again", () => {
    const pool = new Pool(health);
    const [a, b] = [pool.addStatic(backend(1)), pool.addStatic(backend(2))];
    for (let i = 0; i < 3; i++) pool.recordOutcome(a, true);
    expect(a.outlier.circuit).toBe("open");
    expect(a.available).toBe(false);
    expect(b.available).toBe(true);
    expect(pool.limited).toBe(false);

    expect(pool.tick(Date.now() + 60_000)).toEqual([a]);
    expect(a.outlier.circuit).toBe("half-open");
    expect(a.available).toBe(true);
    expect(a.slots).toBe(3);
    expect(pool.limited).toBe(true);

    // With three trials in flight, selection skips it (b takes the rest).
    const strategy = createStrategy({ kind: "builtin", name: "round-robin", key: "ip" });
    const ctx = { clientIp: "127.0.0.1", header: () => null };
    a.inflight = 3;
    for (let i = 0; i < 4; i++) expect(selectBackend(strategy, pool.backends, ctx, undefined, pool.limited)).toBe(b);
    a.inflight = 0;

    const changes = [pool.recordOutcome(a, false), pool.recordOutcome(a, false), pool.recordOutcome(a, false)];
    expect(changes).toEqual([undefined, undefined, { to: "closed" }]);
    expect(a.slots).toBe(0);
    expect(pool.limited).toBe(false);
  });

  test("the error-rate window counts every outcome and rolls over after `window`", () => {
    const pool = new Pool({ ...health, eject: { ...cfg, consecutiveFailures: 0 } });
    const [a] = [pool.addStatic(backend(1)), pool.addStatic(backend(2))];
    for (let i = 0; i < 10; i++) pool.recordOutcome(a, false);
    for (let i = 0; i < 9; i++) pool.recordOutcome(a, true);
    expect(a.outlier.circuit).toBe("closed"); // 9 of 19: too few requests
    pool.tick(a.windowStart + cfg.window); // the window rolls: counts start over
    expect(a.windowRequests).toBe(0);
    for (let i = 0; i < 10; i++) pool.recordOutcome(a, false);
    for (let i = 0; i < 9; i++) pool.recordOutcome(a, true);
    expect(a.outlier.circuit).toBe("closed");
    const change = pool.recordOutcome(a, true); // 10 of 20
    expect(change?.to).toBe("open");
    expect(change?.reason).toBe("error-rate");
    expect(a.outcomes[OUT_EJECTIONS]).toBe(1);
  });

  test("panic: below the threshold of live backends available, selection spreads over every live one", () => {
    const pool = new Pool(health, 1, 0.5);
    const members = [1, 2, 3, 4].map((p) => pool.addStatic(backend(p)));
    const strategy = createStrategy({ kind: "builtin", name: "round-robin", key: "ip" });
    const ctx = { clientIp: "127.0.0.1", header: () => null };
    const pick = () => selectBackend(strategy, pool.backends, ctx, undefined, pool.limited, pool.panic);
    pool.setState(members[0]!, "unhealthy");
    expect(pool.panic).toBe(false); // 3 of 4 available
    pool.setState(members[1]!, "unhealthy");
    expect(pool.panic).toBe(false); // 2 of 4: not below half
    pool.setState(members[2]!, "unhealthy");
    expect(pool.panic).toBe(true); // 1 of 4
    const picked = new Set(Array.from({ length: 8 }, pick));
    expect(picked.size).toBe(4);
    pool.setState(members[3]!, "stopped"); // stopped ones never count, nor take traffic
    expect(new Set(Array.from({ length: 6 }, pick))).toEqual(new Set(members.slice(0, 3)));
    // Off by default: only the available backend is picked.
    const calm = new Pool(health);
    const [x, y] = [calm.addStatic(backend(1)), calm.addStatic(backend(2))];
    calm.setState(x, "unhealthy");
    expect(calm.panic).toBe(false);
    expect(selectBackend(strategy, calm.backends, ctx, undefined, calm.limited, calm.panic)).toBe(y);
  });
});
