/**
 * One run's report: a per-second table, a text chart (one row per 2 s) and a
 * summary (totals, reaction to the steps, SCALE lines, trouble, the stop).
 */
import type { Fulcrum, Survivor } from "./fulcrum.ts";
import type { Poll, Recorder } from "./load.ts";

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}
export const p99 = (values: number[]) => percentile([...values].sort((x, y) => x - y), 0.99);
export const f1 = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "—");
export const pad = (s: string | number, n: number) => String(s).padStart(n);
export const secStr = (x: number | undefined) => (x === undefined ? "—" : `${x.toFixed(2)} s`);

/** The last poll taken in [from, to). */
export function lastPoll(r: Recorder, from: number, to: number): Poll | undefined {
  let found: Poll | undefined;
  for (const p of r.polls) if (p.ok && p.t >= from && p.t < to) found = p;
  return found;
}
function otherStates(p: Poll | undefined): string {
  if (!p) return "";
  return Object.entries(p.states)
    .filter(([s]) => s !== "healthy")
    .map(([s, n]) => `${n} ${s}`)
    .join(", ");
}

export interface ScaleLine {
  t: number;
  direction: "UP" | "DOWN";
  from: number;
  to: number;
  text: string;
}
export function scaleLines(f: Fulcrum): ScaleLine[] {
  const out: ScaleLine[] = [];
  for (const l of f.lines) {
    const m = /SCALE: (UP|DOWN) (\d+) -> (\d+)/.exec(l.text);
    if (m) out.push({ t: l.t, direction: m[1] as "UP" | "DOWN", from: Number(m[2]), to: Number(m[3]), text: l.text });
  }
  return out;
}

/** The first phase boundary where clients rise, and the next one where they fall. */
export function steps(r: Recorder): { stepUp?: number; stepDown?: number } {
  let stepUp: number | undefined;
  let stepDown: number | undefined;
  const profile = r.opt.profile;
  for (let i = 1; i < profile.length; i++) {
    const prev = profile[i - 1]!;
    const cur = profile[i]!;
    if (stepUp === undefined && cur.clients > prev.clients) stepUp = cur.start;
    else if (stepUp !== undefined && stepDown === undefined && cur.clients < prev.clients) stepDown = cur.start;
  }
  return { stepUp, stepDown };
}

export function perSecondTable(r: Recorder, rows: number): string {
  const out: string[] = [];
  out.push("   t  clients  req/s  failed  p50 ms  p99 ms  desired  healthy  load/inst  in flight  other instances");
  for (let s = 0; s < rows; s++) {
    const b = r.seconds[s] ?? { ok: 0, failed: 0, latencies: [] };
    const sorted = [...b.latencies].sort((x, y) => x - y);
    const p = lastPoll(r, s, s + 1);
    out.push(
      `${pad(s, 4)}  ${pad(r.clientsAt(s), 7)}  ${pad(b.ok + b.failed, 5)}  ${pad(b.failed, 6)}  ${pad(f1(percentile(sorted, 0.5)), 6)}  ${pad(f1(percentile(sorted, 0.99)), 6)}  ` +
        `${pad(p ? f1(p.desired) : "—", 7)}  ${pad(p ? f1(p.healthy) : "—", 7)}  ${pad(p ? f1(p.load, 2) : "—", 9)}  ${pad(p ? f1(p.inflight) : "—", 9)}  ${otherStates(p)}`,
    );
  }
  return out.join("\n");
}

export function chart(r: Recorder, rows: number, step = 2): string {
  const max = r.opt.max;
  const windows: { s: number; p99: number; p?: Poll }[] = [];
  for (let s = 0; s < rows; s += step) {
    const lat: number[] = [];
    for (let k = s; k < Math.min(rows, s + step); k++) lat.push(...(r.seconds[k]?.latencies ?? []));
    windows.push({ s, p99: p99(lat), p: lastPoll(r, s, s + step) });
  }
  const maxP99 = Math.max(1, ...windows.map((w) => (Number.isFinite(w.p99) ? w.p99 : 0)));
  const width = 30;
  const out: string[] = [];
  out.push(`One row per ${step} s, instances at the last /lb-status poll of the row: # healthy, + wanted (desired) but not healthy yet, . up to max ${max}.`);
  out.push(`p99 of the requests completed in those ${step} s; the bar is scaled to the highest p99 (${f1(maxP99)} ms = ${width} ×'=').`);
  out.push("");
  out.push(`   t  clients  ${"instances".padEnd(Math.max(9, max))}  p99 ms`);
  for (const w of windows) {
    const healthy = w.p ? Math.min(max, w.p.healthy) : 0;
    const desired = w.p ? Math.min(max, Math.max(healthy, w.p.desired)) : 0;
    const inst = w.p ? "#".repeat(healthy) + "+".repeat(desired - healthy) + ".".repeat(max - desired) : "?".repeat(max);
    const bar = Number.isFinite(w.p99) ? "=".repeat(Math.max(1, Math.round((w.p99 / maxP99) * width))) : "";
    out.push(`${pad(w.s, 4)}  ${pad(r.clientsAt(w.s), 7)}  ${inst.padEnd(Math.max(9, max))}  ${pad(f1(w.p99), 6)} ${bar}`);
  }
  return out.join("\n");
}

export function summary(r: Recorder, f: Fulcrum, left: Survivor[], profileEnd: number): string {
  const { opt } = r;
  const out: string[] = [];
  const scales = scaleLines(f);
  const { stepUp, stepDown } = steps(r);
  const okPolls = r.polls.filter((p) => p.ok && p.t >= 0);
  const peakHealthy = Math.max(0, ...okPolls.map((p) => p.healthy));
  const peakDesired = Math.max(0, ...okPolls.map((p) => p.desired));
  const after = (t: number | undefined, pred: (p: Poll) => boolean) => (t === undefined ? undefined : okPolls.find((p) => p.t >= t && pred(p)));
  const firstUp = stepUp === undefined ? undefined : scales.find((s) => s.t >= stepUp && s.direction === "UP");
  const firstDown = stepDown === undefined ? undefined : scales.find((s) => s.t >= stepDown && s.direction === "DOWN");
  const peakReached = after(stepUp, (p) => p.healthy === peakHealthy);
  const peakDesiredAt = after(stepUp, (p) => p.desired === peakDesired);
  const total = (p: Poll) => Object.values(p.states).reduce((a, b) => a + b, 0);
  const backToMin = after(stepDown, (p) => p.desired === opt.min && p.healthy === opt.min && total(p) === opt.min);
  const lastSeen = okPolls[okPolls.length - 1];

  out.push(`Requests: ${(r.totalOk + r.totalFailed).toLocaleString("en-US")} completed, ${r.totalFailed.toLocaleString("en-US")} failed (target 0).`);
  if (r.failures.size) out.push(`  Failures by kind: ${[...r.failures].map(([k, n]) => `${k} ×${n}`).join("; ")}.`);
  const failedSeconds = r.seconds.map((s, i) => [i, s.failed] as const).filter(([, n]) => n > 0);
  if (failedSeconds.length) out.push(`  Failures in seconds: ${failedSeconds.map(([i, n]) => `t=${i}: ${n}`).join(", ")}.`);
  const pollErrors = r.polls.filter((p) => !p.ok);
  out.push(`/lb-status polls: ${r.polls.filter((p) => p.ok).length} answered, ${pollErrors.length} failed${pollErrors.length ? ` (e.g. ${pollErrors[0]!.error})` : ""}.`);
  out.push("");
  if (stepUp !== undefined) {
    out.push(`Step up at t=${stepUp} s (${r.clientsAt(stepUp - 0.001)} → ${r.clientsAt(stepUp)} clients):`);
    out.push(`  first SCALE UP after ${firstUp ? `${secStr(firstUp.t - stepUp)} (${firstUp.text.trim()})` : "— (none)"}`);
    out.push(`  desired reached its peak ${peakDesired} after ${peakDesiredAt ? secStr(peakDesiredAt.t - stepUp) : "—"} (first /lb-status poll showing it)`);
    out.push(`  healthy instances reached their peak ${peakHealthy} after ${peakReached ? secStr(peakReached.t - stepUp) : "—"} (first /lb-status poll showing it)`);
  } else out.push("Step up: the profile has no rise in clients.");
  if (stepDown !== undefined) {
    out.push(`Step down at t=${stepDown} s (${r.clientsAt(stepDown - 0.001)} → ${r.clientsAt(stepDown)} clients):`);
    out.push(`  first SCALE DOWN after ${firstDown ? `${secStr(firstDown.t - stepDown)} (${firstDown.text.trim()})` : "— (none)"}`);
    out.push(
      backToMin
        ? `  back to min (${opt.min}: desired ${opt.min}, ${opt.min} healthy, no other instance) after ${secStr(backToMin.t - stepDown)}`
        : `  back to min (${opt.min}): NOT reached within ${secStr(profileEnd - stepDown)} of the step down; at the last poll (t=${lastSeen ? lastSeen.t.toFixed(1) : "?"} s) desired ${lastSeen?.desired ?? "?"}, healthy ${lastSeen?.healthy ?? "?"}, load/inst ${lastSeen ? f1(lastSeen.load, 2) : "?"}`,
    );
  } else out.push("Step down: the profile has no fall in clients after the step up.");
  out.push(`Peak: ${peakHealthy} healthy instances, desired ${peakDesired} (min ${opt.min}, max ${opt.max}).`);
  // Oscillation: with one step up and one step down, the expected sequence is UPs then DOWNs.
  // An UP after a DOWN, or a DOWN before the step down, is worth a look.
  let reUps = 0;
  for (let i = 1; i < scales.length; i++) if (scales[i]!.direction === "UP" && scales.slice(0, i).some((s) => s.direction === "DOWN")) reUps++;
  const earlyDowns = scales.filter((s) => s.direction === "DOWN" && stepDown !== undefined && s.t < stepDown).length;
  out.push(
    `Scale actions: ${scales.length} (${scales.map((s) => `${s.direction} ${s.from}→${s.to}`).join(", ") || "none"}); ` +
      `UP after a DOWN: ${reUps}; DOWN before the step down: ${earlyDowns} (oscillation would show in these two counts).`,
  );
  out.push("");
  out.push("SCALE lines Fulcrum logged (t = seconds since the profile started, when the line reached us):");
  if (scales.length === 0) out.push("  (none)");
  for (const s of scales) out.push(`  t=${pad(s.t.toFixed(1), 5)}  ${s.text.trim()}`);
  out.push("");
  out.push(stopText(f, left));
  return out.join("\n");
}

/** Fulcrum lines that look like trouble, how it took SIGTERM, and the /proc check. */
export function stopText(f: Fulcrum, left: Survivor[]): string {
  const out: string[] = [];
  const trouble = f.lines.filter((l) => /^(WARN|ERROR)\b|error|fail|unhealthy|ejected/i.test(l.text) && !/^SCALE:/.test(l.text));
  out.push(trouble.length ? `Fulcrum lines that look like trouble (${trouble.length}):` : "Fulcrum logged no WARN/ERROR/unhealthy/ejected line.");
  for (const l of trouble.slice(0, 20)) out.push(`  t=${pad(l.t.toFixed(1), 5)}  ${l.text.slice(0, 200)}`);
  if (trouble.length > 20) out.push(`  … ${trouble.length - 20} more`);
  const how = f.killed ? "did not stop on SIGTERM in time: SIGKILLed" : `exit code ${f.exitCode ?? "?"}${f.signal ? ` (${f.signal})` : ""}`;
  out.push(`Fulcrum (pid ${f.pid}) stop on SIGTERM: ${how} after ${f.stopMs ?? "?"} ms.`);
  out.push(`Instances started during the run: ${f.instancePids.size} (PIDs ${[...f.instancePids.keys()].join(", ") || "none"}).`);
  out.push(
    left.length === 0
      ? "After the stop, /proc shows none of them alive, and no process whose parent or process group is Fulcrum or one of them."
      : `**LEFTOVER PROCESSES after the stop** (${left.length}): ${left.map((l) => `pid ${l.pid} [${l.how}] ${l.cmd}`).join("; ")}`,
  );
  return out.join("\n");
}
