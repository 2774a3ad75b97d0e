/**
 * planScale over synthetic load traces. A trace gives the total requests in
 * flight at each moment; the simulation samples it every 100 ms, averages it
 * over the stable and panic windows as the scheduler does, and calls planScale
 * every checkInterval. Instances become ready `startDelay` after being asked for.
 */
import { describe, expect, test } from "bun:test";
import { initialScaleState, instancesFor, isSpike, planScale, type ScaleAction, type ScalingPolicy } from "../../src/decide/scaling.ts";

const policy: ScalingPolicy = {
  min: 2,
  max: 10,
  scaleUpThreshold: 3,
  scaleDownThreshold: 0.5,
  idleTimeout: 30_000,
  cooldown: 10_000,
  stableWindow: 60_000,
  panicThreshold: 2,
};
const PANIC_WINDOW = 6_000;
const CHECK = 2_000;

interface Step {
  t: number;
  desired: number;
  action?: ScaleAction;
}

function simulate(
  trace: (t: number) => number,
  durationMs: number,
  options: { policy?: ScalingPolicy; startDelay?: number; crash?: { at: number; count: number }; check?: number } = {},
): Step[] {
  const p = options.policy ?? policy;
  const samples: { t: number; load: number }[] = [];
  let state = initialScaleState(p);
  let ready = p.min;
  const pendingReady: { at: number; n: number }[] = [];
  const steps: Step[] = [];
  const avg = (t: number, window: number) => {
    const inWindow = samples.filter((s) => s.t > t - window);
    return inWindow.reduce((a, s) => a + s.load, 0) / Math.max(1, inWindow.length);
  };
  // As the sampler does: when a sample last reached scaleDownThreshold per ready instance.
  let quietSince = 0;
  for (let t = 0; t <= durationMs; t += 100) {
    const load = trace(t);
    samples.push({ t, load });
    for (const pending of pendingReady.filter((x) => x.at <= t)) ready += pending.n;
    pendingReady.splice(0, pendingReady.length, ...pendingReady.filter((x) => x.at > t));
    if (options.crash && t === options.crash.at) ready -= options.crash.count;
    if (ready === 0 || load >= p.scaleDownThreshold * ready) quietSince = t;
    if (t % (options.check ?? CHECK) !== 0) continue;
    // As the sampler does: the highest sample over the last idleTimeout, unknown until that long has passed.
    const peak = t < p.idleTimeout ? Infinity : Math.max(...samples.filter((s) => s.t > t - p.idleTimeout).map((s) => s.load));
    const decision = planScale({ stable: avg(t, p.stableWindow), panic: avg(t, PANIC_WINDOW), recent: avg(t, 1000), ready, quietSince, peak }, state, p, t);
    if (decision.action) {
      const delta = decision.action.to - decision.action.from;
      if (delta > 0) pendingReady.push({ at: t + (options.startDelay ?? 1000), n: delta });
      else ready = Math.max(0, ready + delta);
    }
    state = decision.state;
    steps.push({ t, desired: state.desired, action: decision.action });
  }
  return steps;
}

const actions = (steps: Step[]) => steps.filter((s) => s.action).map((s) => s.action!);
const directionChanges = (steps: Step[]) => {
  const dirs = actions(steps).map((a) => a.direction);
  return dirs.filter((d, i) => i > 0 && d !== dirs[i - 1]).length;
};

describe("planScale", () => {
  test("instancesFor brings the average strictly under the threshold", () => {
    expect(instancesFor(8.4, 3)).toBe(3); // 2.8 each
    expect(instancesFor(9, 3)).toBe(4); // 3 each would not be under
    expect(instancesFor(0, 3)).toBe(1);
  });

  test("isSpike: the panic window would need panicThreshold × the ready instances", () => {
    const w = (panic: number, ready: number) => ({ stable: 0, panic, ready, quietSince: 0, peak: Infinity });
    expect(isSpike(w(10, 2), policy)).toBe(true); // 5 each, needs 4 = 2 × 2
    expect(isSpike(w(8, 2), policy)).toBe(false); // 4 each, needs 3 < 4: the stable window's business
    expect(isSpike(w(5, 2), policy)).toBe(false); // under the threshold
    expect(isSpike(w(10, 0), policy)).toBe(false); // nothing ready: a cold start's business
  });

  test("steady low load at min: nothing happens", () => {
    expect(actions(simulate(() => 1, 300_000))).toEqual([]);
  });

  test("step load: panics up at the next check and reaches what the load needs within one panic window", () => {
    // 2 instances, then 24 in flight (12 each): 9 instances bring it under 3.
    const steps = simulate((t) => (t < 20_000 ? 2 : 24), 60_000);
    const ups = actions(steps);
    expect(ups[0]).toMatchObject({ direction: "up", from: 2 });
    expect(ups[0]!.reason).toMatch(/^avg load \d+\.\d\d > 3, panic$/);
    expect(steps.find((s) => s.t === 22_000)?.action?.direction).toBe("up");
    expect(steps.find((s) => s.t === 20_000 + PANIC_WINDOW)!.desired).toBe(9);
    // Sized for the load of the last second, not the panic window's average that is still filling: at once.
    expect(ups[0]!.to).toBe(9);
    expect(ups).toHaveLength(1);
    expect(ups.every((a) => a.direction === "up")).toBe(true);
  });

  test("a moderate rise scales up on the stable window, not in panic", () => {
    // 2 instances at 8 in flight (4 each): not a spike (needs 3 < 2×2), the stable average crosses 3 later.
    const steps = simulate(() => 8, 120_000);
    const up = actions(steps);
    expect(up).toHaveLength(1);
    expect(up[0]).toMatchObject({ direction: "up", from: 2, to: 3 });
    expect(up[0]!.reason).toMatch(/^avg load \d+\.\d\d > 3$/);
  });

  test("spike: panics up fast, never scales down while panicking, then back to min after the spike", () => {
    const spike = (t: number) => (t >= 30_000 && t < 40_000 ? 40 : 1);
    const steps = simulate(spike, 300_000);
    const firstUp = steps.find((s) => s.action?.direction === "up")!;
    expect(firstUp.t).toBeLessThanOrEqual(32_000); // within one check of the spike
    expect(firstUp.action!.reason).toContain("panic");
    const firstDown = steps.find((s) => s.action?.direction === "down")!;
    expect(firstDown.t).toBeGreaterThanOrEqual(40_000 + policy.stableWindow); // not before panic ends
    expect(steps.at(-1)!.desired).toBe(policy.min);
  });

  test("slow ramp: scales up in steps, never overshoots max, never goes down while rising", () => {
    const ramp = (t: number) => Math.min(60, t / 5_000); // +1 in flight every 5 s
    const steps = simulate(ramp, 400_000);
    expect(actions(steps).every((a) => a.direction === "up")).toBe(true);
    expect(Math.max(...steps.map((s) => s.desired))).toBe(policy.max);
  });

  test("flapping around the threshold does not oscillate", () => {
    // Load alternates 2.6 / 3.4 per instance every 4 s around the scale-up threshold of 3.
    const flap = (t: number) => (Math.floor(t / 4_000) % 2 === 0 ? 5.2 : 6.8);
    const steps = simulate(flap, 600_000);
    expect(directionChanges(steps)).toBe(0);
    expect(actions(steps).length).toBeLessThanOrEqual(1);
  });

  test("load that drops scales down one at a time after idleTimeout, cooldown apart, to min", () => {
    const steps = simulate((t) => (t < 120_000 ? 20 : 0), 400_000);
    const downs = steps.filter((s) => s.action?.direction === "down");
    expect(downs.every((s) => s.action!.to === s.action!.from - 1)).toBe(true);
    expect(downs[0]!.t - 120_000).toBeGreaterThanOrEqual(policy.idleTimeout);
    for (let i = 1; i < downs.length; i++) expect(downs[i]!.t - downs[i - 1]!.t).toBeGreaterThanOrEqual(policy.cooldown);
    expect(steps.at(-1)!.desired).toBe(policy.min);
    expect(downs[0]!.action!.reason).toMatch(/^load 0\.\d\d < 0\.5 per instance for \d+s$/);
  });

  test("the first scale-down comes within idleTimeout + checkInterval of the load going away, however long the stable window", () => {
    // The original autoscaler's config.yaml: idleTimeout 30 s, checkInterval 5 s; Fulcrum's default 30 s stable window.
    const seed: ScalingPolicy = { ...policy, idleTimeout: 30_000, stableWindow: 30_000 };
    for (const stepDown of [60_000, 61_300, 63_700]) {
      const steps = simulate((t) => (t < stepDown ? 30 : 2), 200_000, { policy: seed, check: 5_000 });
      const first = steps.find((s) => s.action?.direction === "down") as Step;
      expect(first.t - stepDown).toBeGreaterThanOrEqual(seed.idleTimeout);
      expect(first.t - stepDown).toBeLessThanOrEqual(seed.idleTimeout + 5_000);
    }
  });

  test("after a spike the pool comes to rest at the count the load needs, not where the quiet rule stops", () => {
    // 40 in flight, then 4: at 8 instances 4 is 0.5 each, never "below" 0.5, but 2 serve it (2 each, under 70 % of 3).
    const p = { ...policy, min: 1, stableWindow: 30_000 };
    const steps = simulate((t) => (t < 60_000 ? 40 : 4), 400_000, { policy: p, check: 5_000 });
    expect(Math.max(...steps.map((s) => s.desired))).toBe(10);
    const downs = actions(steps).filter((a) => a.direction === "down");
    // One at a time, cooldown apart: the quiet rule takes 10 → 9 → 8 (4 < 0.5 × 9), the peak rule the rest.
    expect(downs.map((a) => a.from)).toEqual([10, 9, 8, 7, 6, 5, 4, 3]);
    expect(downs.every((a) => a.to === a.from - 1)).toBe(true);
    expect(downs.find((a) => a.from === 8)!.reason).toBe("peak load 4.00 over 30s needs 2 instance(s) at 2.10 each");
    expect(steps.at(-1)!.desired).toBe(2);
    // The first scale-down still waits a whole idleTimeout after the step.
    expect(steps.find((s) => s.action?.direction === "down")!.t - 60_000).toBeGreaterThanOrEqual(p.idleTimeout);
    // And a load that comes back to 4 later is still served: no scale-up from the resting count.
    const again = simulate((t) => (t < 60_000 ? 40 : 4), 700_000, { policy: p, check: 5_000 });
    expect(actions(again).filter((a) => a.direction === "up" && a.from === 2)).toEqual([]);
  });

  test("a peak in the last idleTimeout keeps the instances it needed", () => {
    // Mostly 2 in flight, but 9 once every 20 s: 9 needs 5 instances at 2.1, so the pool stays at 5.
    const p = { ...policy, min: 1, stableWindow: 30_000 };
    const bursty = (t: number) => (t < 60_000 ? 40 : t % 20_000 < 500 ? 9 : 2);
    const steps = simulate(bursty, 400_000, { policy: p, check: 5_000 });
    expect(steps.at(-1)!.desired).toBe(5);
  });

  test("a short lull does not scale down: the quiet must last the whole idleTimeout", () => {
    const lulls = (t: number) => (t % 40_000 < 20_000 ? 20 : 0); // 20 s quiet, 20 s busy, over and over
    const steps = simulate(lulls, 400_000, { policy: { ...policy, idleTimeout: 25_000 } });
    expect(actions(steps).filter((a) => a.direction === "down")).toEqual([]);
  });

  test("a scale-down never leaves the current load above the scale-up threshold", () => {
    // 4 instances, quiet by the per-instance measure only because the threshold is high.
    const p = { ...policy, min: 1, scaleDownThreshold: 2.9, idleTimeout: 0, cooldown: 0 };
    const decision = planScale({ stable: 11, panic: 11, ready: 4, quietSince: 0, peak: Infinity }, { ...initialScaleState(p), desired: 4 }, p, 100_000);
    expect(decision.action).toBeUndefined(); // 3 instances would carry 3.67 each
  });

  test("an instance crashing during scale-up does not trigger extra scale-up", () => {
    const steps = simulate((t) => (t < 10_000 ? 2 : 24), 60_000, { crash: { at: 12_000, count: 1 } });
    const ups = actions(steps).filter((a) => a.direction === "up");
    expect(Math.max(...ups.map((a) => a.to))).toBe(9);
  });

  test("scale to zero: with min 0, an idle pool goes to 0 and stays there", () => {
    const zero = { ...policy, min: 0 };
    const steps = simulate(() => 0, 200_000, { policy: { ...zero } });
    expect(steps.at(-1)!.desired).toBe(0);
  });

  test("a desired count outside min..max is corrected first", () => {
    const decision = planScale({ stable: 0, panic: 0, ready: 1, quietSince: 0, peak: Infinity }, { ...initialScaleState(policy), desired: 12 }, policy, 0);
    expect(decision.action).toEqual({ direction: "down", from: 12, to: 10, reason: "above max 10" });
  });
});

describe("SCALE log reasons", () => {
  test("never print a load equal to the threshold it is compared with", () => {
    const p = { ...policy, idleTimeout: 0, cooldown: 0 };
    const decision = planScale({ stable: 1.99, panic: 1.99, ready: 4, quietSince: 100_000, peak: Infinity }, { ...initialScaleState(p), desired: 4 }, p, 100_000);
    expect(decision.action?.reason).toBe("load 0.497 < 0.5 per instance for 0s");
  });
});
