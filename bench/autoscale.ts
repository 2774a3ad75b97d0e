/**
 * Autoscaling scenario: a stepped load profile against Fulcrum running managed
 * instances of examples/backend.ts, watched second by second. Run it through
 * `bash bench/autoscale.sh` (flags → environment, temp dir, clean-up by PID on
 * exit) or directly with `bun bench/autoscale.ts` (environment variables only).
 *
 *   1. Writes a JSON config into a temp dir (instances min..max of
 *      examples/backend.ts, optionally with `--concurrency N`, on free ports;
 *      access log off) and starts `bun run src/main.ts --config FILE` in its
 *      own process group, on 127.0.0.1.
 *   2. Drives a closed-loop profile (by default 20 s × 2 clients, 30 s × 30,
 *      30 s × 2); each client loops `GET /work?ms=100`. Per second of
 *      completion: requests, failures, p50/p99. Every 500 ms: `/lb-status`.
 *   3. Prints a per-second table, a text chart and a summary (bench/autoscale/report.ts).
 *
 * COMPARE=1 (autoscale.sh --compare) runs the same low → high → low trace three
 * times, one after the other: autoscaled (min..max), fixed at max (min = max =
 * MAX), fixed at min (min = max = MIN), with a saturating backend (CONCURRENCY
 * 4) and Fulcrum's default scaling settings; then a side-by-side table and one
 * pass/fail line per target of issue 12 (bench/autoscale/compare.ts).
 *
 * Fulcrum is stopped with SIGTERM by PID (SIGKILL after a grace period); it
 * stops its instances itself. Every loop is bounded in count and time; SIGINT /
 * SIGTERM / SIGHUP stop everything started before exiting.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { comparison, type EffectiveScaling, type RunResult, type Variant } from "./autoscale/compare.ts";
import { Clock, Fulcrum } from "./autoscale/fulcrum.ts";
import { Recorder, type StatusBody } from "./autoscale/load.ts";
import { readOptions } from "./autoscale/options.ts";
import { chart, perSecondTable, stopText, summary } from "./autoscale/report.ts";
import { ROOT } from "./procs.ts";

const HOST = "127.0.0.1";
const env = process.env;
const opt = readOptions();
if (opt.compare && opt.min < 1) throw new Error("COMPARE: MIN_INSTANCES must be at least 1 (the fixed-min run serves with it)");
const OWN_TMP = !env.BENCH_TMP;
const TMP = env.BENCH_TMP ?? mkdtempSync(join(tmpdir(), "fulcrum-autoscale-"));
const PID_FILE = env.BENCH_PIDS ?? join(TMP, "pids");
const say = (line: string) => console.error(`autoscale: ${line}`);
const PROFILE_SECONDS = opt.profile[opt.profile.length - 1]!.end;
const MAX_CLIENTS = Math.max(...opt.profile.map((p) => p.clients));

/**
 * A base port for `count` instance ports, all free now. Below Linux's ephemeral
 * range (32768 and up), where our own outgoing connections take ports at random.
 */
function freeBasePort(count: number): number {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * (12_000 - count));
    const taken: { stop(force?: boolean): void }[] = [];
    let ok = true;
    for (let p = base; p < base + count && ok; p++) {
      try {
        taken.push(Bun.listen({ hostname: HOST, port: p, socket: { data() {} } }));
      } catch {
        ok = false;
      }
    }
    for (const t of taken) t.stop(true);
    if (ok) return base;
  }
  throw new Error(`no run of ${count} free ports found in 20000-32000`);
}

function writeConfig(variant: Variant, tag: string): string {
  const backend = join(ROOT, "examples", "backend.ts");
  const run = opt.concurrency > 0 ? { command: ["bun", "run", backend, "--concurrency", String(opt.concurrency)] } : { location: backend };
  const config = {
    listen: { port: 0, hostname: HOST },
    instances: { ...run, min: variant.min, max: variant.max, basePort: freeBasePort(variant.max), ...opt.instanceExtras },
    ...(Object.keys(opt.scaling).length ? { scaling: opt.scaling } : {}),
    ...(Object.keys(opt.health).length ? { health: opt.health } : {}),
    log: { access: false },
  };
  const file = join(TMP, `autoscale.${tag}.config.json`);
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

/** The settings Fulcrum resolves from the file (`--check` prints the effective config). */
async function resolved(configFile: string): Promise<{ scaling: EffectiveScaling; slowStart: number }> {
  const proc = Bun.spawn(["bun", "run", "src/main.ts", "--config", configFile, "--check"], { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
  const [text, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  clearTimeout(timer);
  if (code !== 0) throw new Error(`fulcrum --check ${configFile} exited ${code}: ${await new Response(proc.stderr).text()}`);
  // The JSON, then a "config OK: FILE" line.
  const config = JSON.parse(text.slice(text.indexOf("{"), text.lastIndexOf("}") + 1)) as { scaling: EffectiveScaling; instances: { slowStart: number } };
  return { scaling: config.scaling, slowStart: config.instances.slowStart };
}

let aborting = false;
let current: { fulcrum?: Fulcrum; rec?: Recorder } = {};

interface Done extends RunResult {
  configFile: string;
  profileEnd: number;
}

/** One pass of the profile against a fresh Fulcrum; stops it and checks /proc before returning. */
async function runOnce(variant: Variant, tag: string): Promise<Done> {
  if (aborting) throw new Error("aborting");
  const configFile = writeConfig(variant, tag);
  const { scaling, slowStart } = await resolved(configFile);
  const clock = new Clock();
  const fulcrum = new Fulcrum(configFile, clock, PID_FILE);
  const rec = new Recorder(opt, clock, say);
  current = { fulcrum, rec };
  try {
    const m = await fulcrum.waitLine(/Load balancer running on port (\d+)/, 30_000);
    const baseUrl = `http://${HOST}:${Number(m[1])}`;
    say(`[${variant.name}] Fulcrum pid ${fulcrum.pid} on ${baseUrl} (ready after ${Math.round(clock.now() * 1000)} ms)`);
    // Pre-flight: min instances healthy (all of them for a fixed run) and one request through.
    for (let i = 0; i < 300; i++) {
      if (aborting) throw new Error("aborting");
      try {
        const body = (await (await fetch(`${baseUrl}/lb-status`, { signal: AbortSignal.timeout(2000) })).json()) as StatusBody;
        if ((body.instances ?? []).filter((x) => x.managed && x.state === "healthy").length >= Math.max(1, variant.min)) break;
      } catch {}
      if (i === 299) throw new Error(`${Math.max(1, variant.min)} healthy instance(s) not reached within 30 s; Fulcrum said:\n${fulcrum.tail()}`);
      await Bun.sleep(100);
    }
    const pre = await fetch(`${baseUrl}/work?ms=1`, { signal: AbortSignal.timeout(5000) });
    const preText = await pre.text();
    if (!pre.ok) throw new Error(`pre-flight GET /work?ms=1: ${pre.status} ${preText}`);

    // The profile clock starts now; earlier log lines are shifted to negative times.
    const shift = clock.now();
    clock.t0 = performance.now();
    for (const l of fulcrum.lines) l.t -= shift;
    say(`[${variant.name}] profile starts (${PROFILE_SECONDS} s, up to ${MAX_CLIENTS} clients)`);
    const poller = rec.pollStatus(baseUrl, PROFILE_SECONDS + opt.requestTimeoutMs / 1000 + 5, fulcrum);
    const progress = setInterval(() => {
      const p = rec.polls[rec.polls.length - 1];
      say(`[${variant.name}] t=${clock.now().toFixed(0)}s clients ${rec.clientsAt(clock.now())} done ${rec.totalOk + rec.totalFailed} (failed ${rec.totalFailed}) desired ${p?.desired ?? "?"} healthy ${p?.healthy ?? "?"}`);
    }, 10_000);
    try {
      await rec.driveLoad(baseUrl);
    } finally {
      clearInterval(progress);
    }
    const profileEnd = clock.now();
    await Bun.sleep(opt.pollMs); // one last poll's worth, then stop polling
    rec.pollStop = true;
    await Promise.race([poller, Bun.sleep(opt.pollMs * 3)]);
    say(`[${variant.name}] stopping Fulcrum (SIGTERM)`);
    await fulcrum.stop(opt.stopGraceMs, say);
    const left = await fulcrum.survivors();
    return { variant, rec, fulcrum, left, scaling, slowStart, configFile, profileEnd };
  } finally {
    rec.abort.abort();
    rec.pollStop = true;
    await fulcrum.stop(opt.stopGraceMs, say);
  }
}

/** `abc1234 (working tree)`, with a note when src/ has uncommitted changes. */
function fulcrumRev(): string {
  const git = (...a: string[]) => Bun.spawnSync(["git", "-C", ROOT, ...a], { stdout: "pipe", stderr: "pipe" }).stdout.toString().trim();
  const rev = git("rev-parse", "--short", "HEAD") || "?";
  return git("status", "--porcelain", "--", "src") ? `${rev} + uncommitted changes in src/` : `${rev} (working tree)`;
}

function heading(title: string): string {
  const backend = opt.concurrency > 0 ? `examples/backend.ts --concurrency ${opt.concurrency}` : "examples/backend.ts (no concurrency limit)";
  return (
    `## ${title}\n\n${new Date().toISOString()} · Fulcrum ${fulcrumRev()} · Bun ${Bun.version} · ${navigator.hardwareConcurrency} CPUs (shared by the load generator, Fulcrum and every instance) · ` +
    `profile ${opt.profile.map((p) => `${p.end - p.start}s × ${p.clients} clients`).join(" → ")} · each client loops GET /work?ms=${opt.workMs} (closed loop, request timeout ${opt.requestTimeoutMs} ms) · ${backend}`
  );
}

function rawRun(d: Done) {
  const r = d.rec;
  return {
    variant: d.variant,
    scaling: d.scaling,
    seconds: r.seconds.map((s) => ({ ok: s.ok, failed: s.failed, latencies: s.latencies.map((x) => Math.round(x * 10) / 10) })),
    polls: r.polls,
    log: d.fulcrum.lines,
  };
}

async function main(): Promise<number> {
  say(`temp dir ${TMP}; profile ${opt.profile.map((p) => `${p.end - p.start}s×${p.clients}`).join(", ")}; GET /work?ms=${opt.workMs}${opt.concurrency ? `; backend concurrency ${opt.concurrency}` : ""}`);
  if (!opt.compare) {
    const d = await runOnce({ name: "autoscaled", min: opt.min, max: opt.max }, "single");
    const rows = Math.max(Math.ceil(PROFILE_SECONDS), d.rec.seconds.length);
    const out = [heading("Fulcrum autoscaling scenario"), "", `Config: ${JSON.stringify(await Bun.file(d.configFile).json())}`, ""];
    out.push("### Per second (requests by the second they completed; p50/p99 of the successful ones; instance columns from the last /lb-status poll in that second)", "");
    out.push(perSecondTable(d.rec, rows), "", "### Chart", "", chart(d.rec, rows), "", "### Summary", "", summary(d.rec, d.fulcrum, d.left, d.profileEnd));
    console.log(out.join("\n"));
    if (opt.rawJson) writeFileSync(opt.rawJson, JSON.stringify({ opt, ...rawRun(d) }, null, 1));
    return d.left.length > 0 ? 3 : 0;
  }

  const variants: [Variant, string][] = [
    [{ name: "autoscaled", min: opt.min, max: opt.max }, "autoscaled"],
    [{ name: "fixed max", min: opt.max, max: opt.max }, "fixed-max"],
    [{ name: "fixed min", min: opt.min, max: opt.min }, "fixed-min"],
  ];
  const runs: Done[] = [];
  const sections: string[] = [];
  for (const [variant, tag] of variants) {
    const d = await runOnce(variant, tag);
    runs.push(d);
    const rows = Math.max(Math.ceil(PROFILE_SECONDS), d.rec.seconds.length);
    const body = variant.name === "autoscaled" ? summary(d.rec, d.fulcrum, d.left, d.profileEnd) : stopText(d.fulcrum, d.left);
    sections.push(`### Run: ${variant.name} (instances min ${variant.min}, max ${variant.max})\n\nConfig: ${JSON.stringify(await Bun.file(d.configFile).json())}\n\n${chart(d.rec, rows, 5)}\n\n${body}`);
  }
  const handSet = ["STABLE_WINDOW", "PANIC_WINDOW"].filter((n) => env[n] !== undefined && env[n] !== "");
  const out = [heading("Fulcrum autoscaling: autoscaled vs fixed max vs fixed min"), "", "### Comparison", "", comparison(runs, handSet), "", ...sections.flatMap((s) => [s, ""])];
  console.log(out.join("\n"));
  if (opt.rawJson) writeFileSync(opt.rawJson, JSON.stringify({ opt, runs: runs.map(rawRun) }, null, 1));
  if (opt.rawJson) say(`raw data: ${opt.rawJson}`);
  return runs.some((d) => d.left.length > 0) ? 3 : 0;
}

function cleanTmp(): void {
  if (!OWN_TMP) return; // autoscale.sh owns it
  if (opt.keepTmp) say(`kept ${TMP}`);
  else rmSync(TMP, { recursive: true, force: true });
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    if (aborting) return;
    aborting = true;
    say(`${signal}: stopping the load and Fulcrum`);
    const { fulcrum, rec } = current;
    if (rec) {
      rec.pollStop = true;
      rec.abort.abort();
    }
    void (fulcrum ? fulcrum.stop(opt.stopGraceMs, say).then(() => fulcrum.survivors()) : Promise.resolve([])).then((left) => {
      if (left.length) say(`LEFTOVER PROCESSES: ${left.map((l) => `pid ${l.pid} ${l.cmd}`).join("; ")}`);
      else if (fulcrum) say(`Fulcrum stopped (${fulcrum.killed ? "SIGKILL" : `exit code ${fulcrum.exitCode ?? "?"}`}); /proc shows none of its ${fulcrum.instancePids.size} instance(s) alive`);
      cleanTmp();
      process.exit(130);
    });
  });
}

let code = 1;
try {
  code = await main();
} catch (e) {
  if (!aborting) {
    console.error(`autoscale: FAILED: ${(e as Error).stack ?? e}`);
    if (current.fulcrum) console.error(`--- Fulcrum output (tail) ---\n${current.fulcrum.tail(40)}`);
  }
} finally {
  current.rec?.abort.abort();
  await current.fulcrum?.stop(opt.stopGraceMs, say);
}
if (aborting) await new Promise(() => {}); // the signal handler exits
cleanTmp();
process.exit(code);
