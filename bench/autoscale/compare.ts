/**
 * The comparison (COMPARE=1): the same low → high → low trace run with
 * autoscaling, with instances fixed at max and fixed at min; per run the
 * numbers issue 12 asks for, a table side by side, and one pass/fail line per
 * target.
 */
import { instancesFor, TARGET_UTILIZATION } from "../../src/decide/scaling.ts";
import type { Fulcrum, Survivor } from "./fulcrum.ts";
import type { Recorder } from "./load.ts";
import { f1, lastPoll, p99, scaleLines, steps } from "./report.ts";

export interface Variant {
  readonly name: "autoscaled" | "fixed max" | "fixed min";
  readonly min: number;
  readonly max: number;
}

/** What Fulcrum resolved (`--check`): the scaling settings the run really had. */
export interface EffectiveScaling {
  checkInterval: number;
  idleTimeout: number;
  cooldown: number;
  stableWindow: number;
  panicWindow: number;
  scaleUpThreshold: number;
  scaleDownThreshold: number;
  panicThreshold: number;
}

export interface RunResult {
  variant: Variant;
  rec: Recorder;
  fulcrum: Fulcrum;
  left: Survivor[];
  scaling: EffectiveScaling;
  slowStart: number;
}

export interface Metrics {
  requests: number;
  failed: number;
  /** p99 of the successful requests sent in each phase (low1, high, low2). */
  phaseP99: number[];
  /** p99 of the requests completed in the second half of the high phase (the steady state). */
  highSecondHalfP99: number;
  instanceSeconds: number;
  upAfter?: number;
  downAfter?: number;
  /** Running instances at the last poll of each phase. */
  restsAt: number[];
  /** Whether that count changed in the phase's last 10 s (then it was still moving, not resting). */
  movingAtEnd: boolean[];
}

/** Integral of running managed instances over the profile, from the polls (each held until the next). */
function instanceSeconds(rec: Recorder): number {
  const polls = rec.polls.filter((p) => p.ok && Number.isFinite(p.running) && p.t < rec.profileSeconds);
  let total = 0;
  for (let i = 0; i < polls.length; i++) {
    const from = i === 0 ? 0 : Math.max(0, polls[i]!.t);
    const to = i + 1 < polls.length ? Math.max(0, polls[i + 1]!.t) : rec.profileSeconds;
    total += polls[i]!.running * Math.max(0, to - from);
  }
  return total;
}

export function metrics(r: RunResult): Metrics {
  const { rec } = r;
  const profile = rec.opt.profile;
  const high = profile[1]!;
  const secondHalf: number[] = [];
  for (let s = Math.ceil((high.start + high.end) / 2); s < high.end; s++) secondHalf.push(...(rec.seconds[s]?.latencies ?? []));
  const scales = scaleLines(r.fulcrum);
  const { stepUp, stepDown } = steps(rec);
  const up = stepUp === undefined ? undefined : scales.find((s) => s.t >= stepUp && s.direction === "UP");
  const down = stepDown === undefined ? undefined : scales.find((s) => s.t >= stepDown && s.direction === "DOWN");
  const restsAt = profile.map((p) => lastPoll(rec, p.start, p.end)?.running ?? Number.NaN);
  const movingAtEnd = profile.map((p, i) => rec.polls.some((q) => q.ok && q.t >= Math.max(p.start, p.end - 10) && q.t < p.end && q.running !== restsAt[i]));
  return {
    requests: rec.totalOk + rec.totalFailed,
    failed: rec.totalFailed,
    phaseP99: rec.phaseLatencies.map(p99),
    highSecondHalfP99: p99(secondHalf),
    instanceSeconds: instanceSeconds(rec),
    upAfter: up && stepUp !== undefined ? up.t - stepUp : undefined,
    downAfter: down && stepDown !== undefined ? down.t - stepDown : undefined,
    restsAt,
    movingAtEnd,
  };
}

const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : "—");
const s2 = (x: number | undefined) => (x === undefined ? "—" : `${x.toFixed(2)} s`);
const verdict = (ok: boolean) => (ok ? "PASS" : "MISS");

/** The side-by-side table (Markdown) and the target lines. */
export function comparison(runs: RunResult[], handSetWindows: string[]): string {
  const opt = runs[0]!.rec.opt;
  const [auto, fixedMax, fixedMin] = runs.map(metrics) as [Metrics, Metrics, Metrics];
  const clamp = (n: number) => Math.max(opt.min, Math.min(opt.max, n));
  const need = opt.concurrency > 0 ? clamp(Math.ceil(opt.lowClients / opt.concurrency)) : undefined;
  // What the autoscaler can rest at without scaling straight back up: the low load under its own
  // thresholds (the peak rule in src/decide/scaling.ts). 4 in flight on 1 instance is above scaleUpThreshold 3.
  const sc0 = runs[0]!.scaling;
  const thresholdNeed = clamp(instancesFor(opt.lowClients, sc0.scaleUpThreshold * TARGET_UTILIZATION));
  const names = ["low1", "high", "low2"];
  const all = [auto, fixedMax, fixedMin];
  const header = runs.map((r) => `${r.variant.name} (${r.variant.min === r.variant.max ? `${r.variant.min} instance${r.variant.min === 1 ? "" : "s"}` : `min ${r.variant.min}, max ${r.variant.max}`})`);
  const row = (label: string, cells: string[]) => `| ${label} | ${cells.join(" | ")} |`;
  const out: string[] = [];
  out.push(row("", header));
  out.push(`|---|${runs.map(() => "---:").join("|")}|`);
  out.push(row("requests (failed)", all.map((m) => `${m.requests.toLocaleString("en-US")} (${m.failed})`)));
  for (let i = 0; i < 3; i++) out.push(row(`p99 ${names[i]} (${opt.profile[i]!.clients} clients)`, all.map((m) => ms(m.phaseP99[i]!))));
  out.push(row("p99 high, its 2nd half", all.map((m) => ms(m.highSecondHalfP99))));
  out.push(row("instance-seconds", all.map((m) => `${m.instanceSeconds.toFixed(0)} (${f1((m.instanceSeconds / fixedMax.instanceSeconds) * 100)} % of fixed max)`)));
  out.push(row("step up → first SCALE UP", all.map((m) => s2(m.upAfter))));
  out.push(row("step down → first SCALE DOWN", all.map((m) => s2(m.downAfter))));
  for (const i of [0, 2]) {
    out.push(row(`${names[i]} rests at (instances)`, all.map((m) => `${f1(m.restsAt[i]!)}${m.movingAtEnd[i] ? " (still moving)" : ""}`)));
  }
  out.push("");
  out.push(`The load needs ceil(${opt.lowClients} low clients / concurrency ${opt.concurrency}) = ${need ?? "— (no concurrency limit)"} instance(s) in the low phases` +
    ` and ceil(${opt.highClients} / ${opt.concurrency}) = ${opt.concurrency ? Math.ceil(opt.highClients / opt.concurrency) : "—"} in the high phase (max ${opt.max}).` +
    ` Under the autoscaler's thresholds the low phases need ${thresholdNeed}: ${opt.lowClients} in flight must stay under ${TARGET_UTILIZATION} × scaleUpThreshold ${sc0.scaleUpThreshold} per instance.`);
  const sc = runs[0]!.scaling;
  out.push(`Autoscaled run's scaling settings (as Fulcrum resolved them): checkInterval ${sc.checkInterval} ms, stableWindow ${sc.stableWindow} ms, panicWindow ${sc.panicWindow} ms, ` +
    `idleTimeout ${sc.idleTimeout} ms, cooldown ${sc.cooldown} ms, scaleUpThreshold ${sc.scaleUpThreshold}, scaleDownThreshold ${sc.scaleDownThreshold}, panicThreshold ${sc.panicThreshold}; instances.slowStart ${runs[0]!.slowStart} ms` +
    (handSetWindows.length ? ` (set by hand: ${handSetWindows.join(", ")})` : " (Fulcrum's defaults: no scaling key in the config)."));
  out.push("");

  const ratio = (a: number, b: number) => a / b;
  const highRatio = ratio(auto.phaseP99[1]!, fixedMax.phaseP99[1]!);
  const minRatio = ratio(fixedMin.phaseP99[1]!, fixedMax.phaseP99[1]!);
  const share = auto.instanceSeconds / fixedMax.instanceSeconds;
  const downBound = (sc.idleTimeout + sc.checkInterval) / 1000;
  const windows = handSetWindows.length ? ` — NOT with the default windows (${handSetWindows.join(", ")} set by hand)` : " with the default windows";
  out.push("Targets:");
  out.push(`- ${verdict(auto.failed === 0)} zero failed requests (autoscaled): ${auto.failed} failed of ${auto.requests.toLocaleString("en-US")}.`);
  out.push(`- ${verdict(highRatio <= 1.2)} high-phase p99 within 1.2× of fixed max: ${ms(auto.phaseP99[1]!)} vs ${ms(fixedMax.phaseP99[1]!)} = ${highRatio.toFixed(2)}× ` +
    `(2nd half of the phase: ${ms(auto.highSecondHalfP99)} vs ${ms(fixedMax.highSecondHalfP99)} = ${ratio(auto.highSecondHalfP99, fixedMax.highSecondHalfP99).toFixed(2)}×).`);
  out.push(`- ${verdict(minRatio >= 2)} the scenario is real (fixed min clearly worse, ≥ 2× fixed max in the high phase): ${ms(fixedMin.phaseP99[1]!)} = ${minRatio.toFixed(2)}×.`);
  out.push(`- ${verdict(share <= 0.4 && handSetWindows.length === 0)} instance-seconds at most 40 % of fixed max${windows}: ${auto.instanceSeconds.toFixed(0)} of ${fixedMax.instanceSeconds.toFixed(0)} = ${(share * 100).toFixed(0)} %.`);
  out.push(`- ${verdict(auto.downAfter !== undefined && auto.downAfter <= downBound)} first scale-down within idleTimeout + checkInterval = ${downBound.toFixed(0)} s of the step down: ` +
    `${auto.downAfter === undefined ? "none during the low2 phase" : `${auto.downAfter.toFixed(2)} s`}.`);
  out.push(`- ${verdict(auto.restsAt[2] === thresholdNeed && !auto.movingAtEnd[2])} low2 rests at the count the load needs under the thresholds (${thresholdNeed}; by the backend's concurrency ${need ?? "—"}): ` +
    `${f1(auto.restsAt[2]!)}${auto.movingAtEnd[2] ? " and still moving in its last 10 s" : ""} (low1 rested at ${f1(auto.restsAt[0]!)}).`);
  return out.join("\n");
}
