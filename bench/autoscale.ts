/**
 * Autoscaling scenario: a stepped load profile against Fulcrum running managed
 * instances of examples/backend.ts, watched second by second. Run it through
 * `bash bench/autoscale.sh` (flags → environment, temp dir, clean-up by PID on
 * exit) or directly with `bun bench/autoscale.ts` (environment variables only).
 *
 *   1. Writes a JSON config into a temp dir (instances min..max of
 *      examples/backend.ts on a free base port, fast scaling settings, access
 *      log off) and starts `bun run src/main.ts --config FILE` in its own
 *      process group, on 127.0.0.1.
 *   2. Drives a closed-loop profile, by default 20 s × 2 clients, 30 s × 30
 *      clients, 30 s × 2 clients; each client loops `GET /work?ms=100`. Per
 *      second of completion: requests, failures (non-2xx or network error),
 *      p50/p99 latency. Every 500 ms: `/lb-status` (scaling.desired, instances
 *      in state "healthy", scaling.load).
 *   3. Prints a per-second table, a text chart (one row per 2 s), and a summary:
 *      totals, time from the step up to the first SCALE UP and to the peak
 *      instance count, from the step down to the first SCALE DOWN and back to
 *      min, the SCALE lines Fulcrum logged, how it stopped, and a /proc check
 *      that no instance it started outlived it.
 *
 * Fulcrum is stopped with SIGTERM by PID (SIGKILL after a grace period); it
 * stops its instances itself. Every loop is bounded in count and time; SIGINT /
 * SIGTERM / SIGHUP stop everything started before exiting.
 */
import type { Subprocess } from "bun";
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort } from "./procs.ts";

const ROOT = resolve(import.meta.dir, "..");
const HOST = "127.0.0.1";
const env = process.env;

// ───────────────────────────── options ─────────────────────────────

function num(name: string, fallback: number, min: number, max: number, integer = true): number {
  const value = env[name];
  const n = value === undefined || value === "" ? fallback : Number(value);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    throw new Error(`${name}: expected ${integer ? "an integer" : "a number"} in [${min}, ${max}], got ${value}`);
  }
  return n;
}

interface Phase {
  /** Seconds since the profile started. */
  readonly start: number;
  readonly end: number;
  readonly clients: number;
}

/** "20:2,30:30,30:2" (seconds:clients, in order) → phases. */
function parseProfile(text: string): Phase[] {
  const phases: Phase[] = [];
  let at = 0;
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+(?:\.\d+)?)s?:(\d+)$/.exec(part);
    if (!m) throw new Error(`PROFILE: bad phase ${JSON.stringify(part)} (use seconds:clients, e.g. 20:2,30:30,30:2)`);
    const seconds = Number(m[1]);
    const clients = Number(m[2]);
    if (seconds <= 0 || seconds > 600) throw new Error(`PROFILE: phase length ${seconds}s outside (0, 600]`);
    if (clients > 1000) throw new Error(`PROFILE: ${clients} clients is more than 1000`);
    phases.push({ start: at, end: at + seconds, clients });
    at += seconds;
  }
  if (phases.length === 0) throw new Error("PROFILE: no phases");
  if (at > 1200) throw new Error(`PROFILE: ${at}s in total is more than 1200s`);
  return phases;
}

const lowClients = num("LOW_CLIENTS", 2, 0, 1000);
const highClients = num("HIGH_CLIENTS", 30, 0, 1000);
const opt = {
  profile: parseProfile(
    env.PROFILE ||
      `${num("LOW1_SECONDS", 20, 1, 600)}:${lowClients},${num("HIGH_SECONDS", 30, 1, 600)}:${highClients},${num("LOW2_SECONDS", 30, 1, 600)}:${lowClients}`,
  ),
  workMs: num("WORK_MS", 100, 0, 60_000),
  requestTimeoutMs: num("REQUEST_TIMEOUT_MS", 10_000, 100, 120_000),
  pollMs: num("POLL_MS", 500, 100, 10_000),
  min: num("MIN_INSTANCES", 1, 0, 64),
  max: num("MAX_INSTANCES", 6, 1, 64),
  slowStart: num("SLOW_START", 1000, 0, 600_000),
  checkInterval: num("CHECK_INTERVAL", 1000, 100, 600_000),
  stableWindow: num("STABLE_WINDOW", 10_000, 100, 3_600_000),
  panicWindow: num("PANIC_WINDOW", 1000, 100, 3_600_000),
  idleTimeout: num("IDLE_TIMEOUT", 5000, 0, 3_600_000),
  cooldown: num("COOLDOWN", 3000, 0, 3_600_000),
  scaleUpThreshold: num("SCALE_UP_THRESHOLD", 3, 0, 1e6, false),
  scaleDownThreshold: num("SCALE_DOWN_THRESHOLD", 0.5, 0, 1e6, false),
  healthInterval: num("HEALTH_INTERVAL", 1000, 100, 600_000),
  stopGraceMs: num("STOP_GRACE_MS", 20_000, 1000, 300_000),
  keepTmp: env.KEEP_TMP === "1",
};
if (opt.min > opt.max) throw new Error(`MIN_INSTANCES ${opt.min} > MAX_INSTANCES ${opt.max}`);
const PROFILE_SECONDS = opt.profile[opt.profile.length - 1]!.end;
const MAX_CLIENTS = Math.max(...opt.profile.map((p) => p.clients));

const OWN_TMP = !env.BENCH_TMP;
const TMP = env.BENCH_TMP ?? mkdtempSync(join(tmpdir(), "fulcrum-autoscale-"));
const PID_FILE = env.BENCH_PIDS ?? join(TMP, "pids");
const say = (line: string) => console.error(`autoscale: ${line}`);

// ───────────────────────────── /proc ─────────────────────────────

/** Fields of /proc/PID/stat after the command name: [0] = state, [1] = ppid, [2] = pgrp, [19] = start time. */
function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}
const startTime = (pid: number) => statFields(pid)?.[19];
/** Running (not a zombie) and still the same process (start time matches). */
function alive(pid: number, start: string | undefined): boolean {
  const f = statFields(pid);
  return f !== undefined && f[0] !== "Z" && (start === undefined || f[19] === start);
}
function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
  } catch {
    return "?";
  }
}
/** Every live process whose parent or process group is one of `ids`. */
function processesRelatedTo(ids: Set<number>): { pid: number; ppid: number; pgrp: number; cmd: string }[] {
  const found: { pid: number; ppid: number; pgrp: number; cmd: string }[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync("/proc");
  } catch {}
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const f = statFields(pid);
    if (!f || f[0] === "Z") continue;
    const ppid = Number(f[1]);
    const pgrp = Number(f[2]);
    if (ids.has(ppid) || ids.has(pgrp)) found.push({ pid, ppid, pgrp, cmd: cmdline(pid) });
  }
  return found;
}

// ───────────────────────────── processes ─────────────────────────────

/** Fulcrum's output, line by line, each stamped with seconds since the profile started. */
interface LogLine {
  t: number;
  text: string;
}

let t0 = performance.now();
const now = () => (performance.now() - t0) / 1000;

interface Fulcrum {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  pid: number;
  start: string | undefined;
  lines: LogLine[];
  droppedLines: number;
  exitCode?: number | null;
  signal?: string | null;
  stopMs?: number;
  killed?: boolean;
}
/** Instances seen (from Fulcrum's log and /lb-status): PID → start time. */
const instancePids = new Map<number, string | undefined>();
let fulcrum: Fulcrum | undefined;

function recordPid(pid: number, name: string): string | undefined {
  const start = startTime(pid);
  // autoscale.sh's EXIT trap stops whatever in this file is still alive (PID + start time must match).
  try {
    appendFileSync(PID_FILE, `${pid} ${start ?? "?"} ${name}\n`);
  } catch {}
  return start;
}
function noteInstance(pid: number, source: string): void {
  if (!Number.isInteger(pid) || pid <= 0 || instancePids.has(pid)) return;
  instancePids.set(pid, recordPid(pid, `instance(${source})`));
}

function readLines(stream: ReadableStream<Uint8Array>, f: Fulcrum): void {
  void (async () => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of stream) {
      rest += decoder.decode(chunk, { stream: true });
      let nl = rest.indexOf("\n");
      for (let i = 0; nl >= 0 && i < 100_000; i++) {
        onLine(f, rest.slice(0, nl));
        rest = rest.slice(nl + 1);
        nl = rest.indexOf("\n");
      }
    }
    if (rest) onLine(f, rest);
  })().catch(() => {});
}
const waiters = new Set<() => void>();
function onLine(f: Fulcrum, text: string): void {
  const t = now();
  if (f.lines.length < 200_000) f.lines.push({ t, text });
  else f.droppedLines++;
  const m = /instance \S+ starting on port \d+ \(pid (\d+)\)/.exec(text);
  if (m) noteInstance(Number(m[1]), "log");
  for (const wake of waiters) wake();
}
function waitLine(f: Fulcrum, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  return new Promise((resolvePromise, reject) => {
    const check = () => {
      for (const l of f.lines) {
        const m = pattern.exec(l.text);
        if (m) {
          done();
          return resolvePromise(m);
        }
      }
      if (f.exitCode !== undefined) {
        done();
        reject(new Error(`Fulcrum exited (${f.exitCode}) before printing ${pattern}; output:\n${tail(f)}`));
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${pattern}; output so far:\n${tail(f)}`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      waiters.delete(check);
    };
    waiters.add(check);
    check();
  });
}
const tail = (f: Fulcrum, n = 30) =>
  f.lines
    .slice(-n)
    .map((l) => l.text)
    .join("\n");

function writeConfig(): string {
  const config = {
    listen: { port: 0, hostname: HOST },
    instances: {
      location: join(ROOT, "examples", "backend.ts"),
      min: opt.min,
      max: opt.max,
      basePort: freePort(),
      slowStart: opt.slowStart,
    },
    scaling: {
      checkInterval: opt.checkInterval,
      stableWindow: opt.stableWindow,
      panicWindow: opt.panicWindow,
      idleTimeout: opt.idleTimeout,
      cooldown: opt.cooldown,
      scaleUpThreshold: opt.scaleUpThreshold,
      scaleDownThreshold: opt.scaleDownThreshold,
    },
    health: { interval: opt.healthInterval },
    log: { access: false },
  };
  const file = join(TMP, "autoscale.config.json");
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

let aborting = false;

function startFulcrum(configFile: string): Fulcrum {
  if (aborting) throw new Error("aborting");
  // Its own process group (detached): a terminal's Ctrl-C reaches us, not Fulcrum
  // directly, so Fulcrum sees exactly one signal, our SIGTERM, and drains.
  const proc = Bun.spawn(["bun", "run", "src/main.ts", "--config", configFile], {
    cwd: ROOT,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    detached: true,
    env: { ...process.env },
  });
  const f: Fulcrum = { proc, pid: proc.pid, start: undefined, lines: [], droppedLines: 0 };
  f.start = recordPid(proc.pid, "fulcrum");
  readLines(proc.stdout, f);
  readLines(proc.stderr, f);
  void proc.exited.then((code) => {
    f.exitCode = code;
    f.signal = proc.signalCode === null ? null : String(proc.signalCode);
    for (const wake of waiters) wake();
  });
  return f;
}

let stopping: Promise<void> | undefined;
/** SIGTERM by PID, wait (bounded), SIGKILL after the grace period. */
function stopFulcrum(): Promise<void> {
  stopping ??= (async () => {
    const f = fulcrum;
    if (!f || !alive(f.pid, f.start)) return;
    // Last look for children we might not have seen in the log or in /lb-status.
    for (const p of processesRelatedTo(new Set([f.pid]))) if (p.pid !== f.pid) noteInstance(p.pid, "/proc");
    const began = performance.now();
    try {
      process.kill(f.pid, "SIGTERM");
    } catch {}
    const deadline = began + opt.stopGraceMs;
    while (alive(f.pid, f.start) && performance.now() < deadline) await Promise.race([f.proc.exited, Bun.sleep(50)]);
    if (alive(f.pid, f.start)) {
      say(`Fulcrum (pid ${f.pid}) still running ${opt.stopGraceMs} ms after SIGTERM: SIGKILL`);
      f.killed = true;
      try {
        process.kill(f.pid, "SIGKILL");
      } catch {}
    }
    await Promise.race([f.proc.exited, Bun.sleep(3000)]);
    f.stopMs = Math.round(performance.now() - began);
  })();
  return stopping;
}

/** After Fulcrum stopped: any instance it started that is still running (bounded wait for stragglers). */
async function survivors(): Promise<{ pid: number; cmd: string; how: string }[]> {
  const check = () => {
    const out: { pid: number; cmd: string; how: string }[] = [];
    for (const [pid, start] of instancePids) if (alive(pid, start)) out.push({ pid, cmd: cmdline(pid), how: "recorded instance PID" });
    const ids = new Set<number>([...instancePids.keys()]);
    if (fulcrum) ids.add(fulcrum.pid);
    for (const p of processesRelatedTo(ids)) {
      if (fulcrum && p.pid === fulcrum.pid) continue; // its own process group; checked just below
      if (!out.some((o) => o.pid === p.pid)) out.push({ pid: p.pid, cmd: p.cmd, how: `ppid ${p.ppid}, process group ${p.pgrp}` });
    }
    if (fulcrum && alive(fulcrum.pid, fulcrum.start)) out.push({ pid: fulcrum.pid, cmd: cmdline(fulcrum.pid), how: "Fulcrum itself" });
    return out;
  };
  // A process that got SIGTERM a moment ago may take a few ms to go; give it 2 s.
  let left = check();
  for (let i = 0; i < 20 && left.length > 0; i++) {
    await Bun.sleep(100);
    left = check();
  }
  return left;
}

// ───────────────────────────── load ─────────────────────────────

interface Second {
  ok: number;
  failed: number;
  latencies: number[];
}
const seconds: Second[] = [];
const failures = new Map<string, number>();
let totalOk = 0;
let totalFailed = 0;
const loadAbort = new AbortController();

function bucket(t: number): Second {
  const i = Math.max(0, Math.floor(t));
  for (let k = seconds.length; k <= i && k < 100_000; k++) seconds.push({ ok: 0, failed: 0, latencies: [] });
  return seconds[Math.min(i, seconds.length - 1)]!;
}
function clientsAt(t: number): number {
  for (const p of opt.profile) if (t >= p.start && t < p.end) return p.clients;
  return 0;
}
function phaseEndAt(t: number): number {
  for (const p of opt.profile) if (t >= p.start && t < p.end) return p.end;
  return t;
}

/** One closed-loop client: request after request while the profile wants client `id` running. */
async function client(id: number, baseUrl: string): Promise<void> {
  const url = `${baseUrl}/work?ms=${opt.workMs}`;
  // Bound by count as well as time: no client can do more than one request per ms of the profile.
  for (let i = 0; i < PROFILE_SECONDS * 1000 + 1; i++) {
    const t = now();
    if (loadAbort.signal.aborted || t >= PROFILE_SECONDS || id >= clientsAt(t)) return;
    const began = performance.now();
    let failure: string | undefined;
    try {
      const res = await fetch(url, { signal: AbortSignal.any([loadAbort.signal, AbortSignal.timeout(opt.requestTimeoutMs)]) });
      await res.arrayBuffer();
      if (res.status < 200 || res.status > 299) failure = `status ${res.status}`;
    } catch (e) {
      if (loadAbort.signal.aborted) return; // our own shutdown, not the balancer's fault
      failure = (e as Error).name === "TimeoutError" ? `timeout ${opt.requestTimeoutMs} ms` : `${(e as Error).name}: ${(e as Error).message}`;
    }
    const ms = performance.now() - began;
    const b = bucket(now());
    if (failure) {
      b.failed++;
      totalFailed++;
      failures.set(failure, (failures.get(failure) ?? 0) + 1);
      await Bun.sleep(50); // no hot loop on a balancer that refuses at once
    } else {
      b.ok++;
      totalOk++;
      b.latencies.push(ms);
    }
  }
}

/** Starts clients as the profile wants them (they stop themselves when it wants fewer). */
async function driveLoad(baseUrl: string): Promise<void> {
  const running = new Map<number, Promise<void>>();
  const all: Promise<void>[] = [];
  for (let i = 0; i < (PROFILE_SECONDS * 1000) / 20 + 10; i++) {
    const t = now();
    if (loadAbort.signal.aborted || t >= PROFILE_SECONDS) break;
    const want = clientsAt(t);
    for (let id = 0; id < want; id++) {
      if (running.has(id)) continue;
      const p = client(id, baseUrl).finally(() => running.delete(id));
      running.set(id, p);
      all.push(p);
    }
    // Wake at the next phase boundary or in 20 ms, whichever is first.
    await Bun.sleep(Math.max(1, Math.min(20, (phaseEndAt(t) - now()) * 1000)));
  }
  // The profile is over: clients finish their request in flight (bounded by the request timeout).
  const settled = await Promise.race([Promise.all(all).then(() => true), Bun.sleep(opt.requestTimeoutMs + 2000).then(() => false)]);
  if (!settled) {
    say(`${running.size} client(s) still busy ${opt.requestTimeoutMs + 2000} ms after the profile ended: aborting them`);
    loadAbort.abort();
    await Promise.race([Promise.all(all), Bun.sleep(2000)]);
  }
}

// ───────────────────────────── /lb-status ─────────────────────────────

interface Poll {
  t: number;
  ok: boolean;
  error?: string;
  desired: number;
  healthy: number;
  /** Managed instances by state. */
  states: Record<string, number>;
  load: number;
  inflight: number;
}
const polls: Poll[] = [];
let pollStop = false;

interface StatusBody {
  scaling?: { desired?: number; load?: number };
  instances?: { managed?: boolean; state?: string; pid?: number | null; activeRequests?: number }[];
}

async function pollStatus(baseUrl: string, untilS: number): Promise<void> {
  const every = opt.pollMs / 1000;
  // Poll k is due at t = k × every (0, 0.5, 1.0, ... by default); a slow answer skips the slots it overran.
  for (let k = 0, i = 0; i < untilS / every + 10; i++) {
    if (pollStop || now() >= untilS) return;
    const t = now();
    try {
      const res = await fetch(`${baseUrl}/lb-status`, { signal: AbortSignal.timeout(Math.max(200, opt.pollMs * 2)) });
      const body = (await res.json()) as StatusBody;
      const states: Record<string, number> = {};
      let healthy = 0;
      let inflight = 0;
      for (const inst of body.instances ?? []) {
        if (!inst.managed) continue;
        if (typeof inst.pid === "number") noteInstance(inst.pid, "status");
        states[inst.state ?? "?"] = (states[inst.state ?? "?"] ?? 0) + 1;
        if (inst.state === "healthy") healthy++;
        inflight += inst.activeRequests ?? 0;
      }
      polls.push({ t, ok: true, desired: body.scaling?.desired ?? Number.NaN, healthy, states, load: body.scaling?.load ?? Number.NaN, inflight });
    } catch (e) {
      polls.push({ t, ok: false, error: (e as Error).message, desired: Number.NaN, healthy: Number.NaN, states: {}, load: Number.NaN, inflight: Number.NaN });
    }
    k = Math.max(k + 1, Math.floor(now() / every) + 1);
    await Bun.sleep(Math.max(1, (k * every - now()) * 1000 + 2)); // +2 ms: never wake just before the slot
  }
}

// ───────────────────────────── report ─────────────────────────────

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}
const f1 = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "—");
const pad = (s: string | number, n: number) => String(s).padStart(n);
const secStr = (x: number | undefined) => (x === undefined ? "—" : `${x.toFixed(2)} s`);

/** The last poll taken in [from, to). */
function lastPoll(from: number, to: number): Poll | undefined {
  let found: Poll | undefined;
  for (const p of polls) if (p.ok && p.t >= from && p.t < to) found = p;
  return found;
}
function otherStates(p: Poll | undefined): string {
  if (!p) return "";
  return Object.entries(p.states)
    .filter(([s]) => s !== "healthy")
    .map(([s, n]) => `${n} ${s}`)
    .join(", ");
}

function perSecondTable(rows: number): string {
  const out: string[] = [];
  out.push("   t  clients  req/s  failed  p50 ms  p99 ms  desired  healthy  load/inst  in flight  other instances");
  for (let s = 0; s < rows; s++) {
    const b = seconds[s] ?? { ok: 0, failed: 0, latencies: [] };
    const sorted = [...b.latencies].sort((x, y) => x - y);
    const p = lastPoll(s, s + 1);
    out.push(
      `${pad(s, 4)}  ${pad(clientsAt(s), 7)}  ${pad(b.ok + b.failed, 5)}  ${pad(b.failed, 6)}  ${pad(f1(percentile(sorted, 0.5)), 6)}  ${pad(f1(percentile(sorted, 0.99)), 6)}  ` +
        `${pad(p ? f1(p.desired) : "—", 7)}  ${pad(p ? f1(p.healthy) : "—", 7)}  ${pad(p ? f1(p.load, 2) : "—", 9)}  ${pad(p ? f1(p.inflight) : "—", 9)}  ${otherStates(p)}`,
    );
  }
  return out.join("\n");
}

function chart(rows: number): string {
  const step = 2;
  const windows: { s: number; p99: number; p?: Poll }[] = [];
  for (let s = 0; s < rows; s += step) {
    const lat: number[] = [];
    for (let k = s; k < Math.min(rows, s + step); k++) lat.push(...(seconds[k]?.latencies ?? []));
    windows.push({ s, p99: percentile(lat.sort((x, y) => x - y), 0.99), p: lastPoll(s, s + step) });
  }
  const maxP99 = Math.max(1, ...windows.map((w) => (Number.isFinite(w.p99) ? w.p99 : 0)));
  const width = 30;
  const out: string[] = [];
  out.push(`One row per ${step} s, instances at the last /lb-status poll of the row: # healthy, + wanted (desired) but not healthy yet, . up to max ${opt.max}.`);
  out.push(`p99 of the requests completed in those ${step} s; the bar is scaled to the highest p99 (${f1(maxP99)} ms = ${width} ×'=').`);
  out.push("");
  out.push(`   t  clients  ${"instances".padEnd(Math.max(9, opt.max))}  p99 ms`);
  for (const w of windows) {
    const healthy = w.p ? Math.min(opt.max, w.p.healthy) : 0;
    const desired = w.p ? Math.min(opt.max, Math.max(healthy, w.p.desired)) : 0;
    const inst = w.p ? "#".repeat(healthy) + "+".repeat(desired - healthy) + ".".repeat(opt.max - desired) : "?".repeat(opt.max);
    const bar = Number.isFinite(w.p99) ? "=".repeat(Math.max(1, Math.round((w.p99 / maxP99) * width))) : "";
    out.push(`${pad(w.s, 4)}  ${pad(clientsAt(w.s), 7)}  ${inst.padEnd(Math.max(9, opt.max))}  ${pad(f1(w.p99), 6)} ${bar}`);
  }
  return out.join("\n");
}

interface ScaleLine {
  t: number;
  direction: "UP" | "DOWN";
  from: number;
  to: number;
  text: string;
}
function scaleLines(f: Fulcrum): ScaleLine[] {
  const out: ScaleLine[] = [];
  for (const l of f.lines) {
    const m = /SCALE: (UP|DOWN) (\d+) -> (\d+)/.exec(l.text);
    if (m) out.push({ t: l.t, direction: m[1] as "UP" | "DOWN", from: Number(m[2]), to: Number(m[3]), text: l.text });
  }
  return out;
}

function summary(f: Fulcrum, left: { pid: number; cmd: string; how: string }[], profileEnd: number): string {
  const out: string[] = [];
  const scales = scaleLines(f);
  // Step up: the first phase boundary where clients rise; step down: the next one where they fall.
  let stepUp: number | undefined;
  let stepDown: number | undefined;
  for (let i = 1; i < opt.profile.length; i++) {
    const prev = opt.profile[i - 1]!;
    const cur = opt.profile[i]!;
    if (stepUp === undefined && cur.clients > prev.clients) stepUp = cur.start;
    else if (stepUp !== undefined && stepDown === undefined && cur.clients < prev.clients) stepDown = cur.start;
  }
  const okPolls = polls.filter((p) => p.ok && p.t >= 0);
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

  out.push(`Requests: ${(totalOk + totalFailed).toLocaleString("en-US")} completed, ${totalFailed.toLocaleString("en-US")} failed (target 0).`);
  if (failures.size) out.push(`  Failures by kind: ${[...failures].map(([k, n]) => `${k} ×${n}`).join("; ")}.`);
  const failedSeconds = seconds.map((s, i) => [i, s.failed] as const).filter(([, n]) => n > 0);
  if (failedSeconds.length) out.push(`  Failures in seconds: ${failedSeconds.map(([i, n]) => `t=${i}: ${n}`).join(", ")}.`);
  const pollErrors = polls.filter((p) => !p.ok);
  out.push(`/lb-status polls: ${polls.filter((p) => p.ok).length} answered, ${pollErrors.length} failed${pollErrors.length ? ` (e.g. ${pollErrors[0]!.error})` : ""}.`);
  out.push("");
  if (stepUp !== undefined) {
    out.push(`Step up at t=${stepUp} s (${clientsAt(stepUp - 0.001)} → ${clientsAt(stepUp)} clients):`);
    out.push(`  first SCALE UP after ${firstUp ? `${secStr(firstUp.t - stepUp)} (${firstUp.text.trim()})` : "— (none)"}`);
    out.push(`  desired reached its peak ${peakDesired} after ${peakDesiredAt ? secStr(peakDesiredAt.t - stepUp) : "—"} (first /lb-status poll showing it)`);
    out.push(`  healthy instances reached their peak ${peakHealthy} after ${peakReached ? secStr(peakReached.t - stepUp) : "—"} (first /lb-status poll showing it)`);
  } else out.push("Step up: the profile has no rise in clients.");
  if (stepDown !== undefined) {
    out.push(`Step down at t=${stepDown} s (${clientsAt(stepDown - 0.001)} → ${clientsAt(stepDown)} clients):`);
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
  const trouble = f.lines.filter((l) => /^(WARN|ERROR)\b|error|fail|unhealthy|ejected/i.test(l.text) && !/^SCALE:/.test(l.text));
  out.push("");
  out.push(trouble.length ? `Fulcrum lines that look like trouble (${trouble.length}):` : "Fulcrum logged no WARN/ERROR/unhealthy/ejected line.");
  for (const l of trouble.slice(0, 20)) out.push(`  t=${pad(l.t.toFixed(1), 5)}  ${l.text.slice(0, 200)}`);
  if (trouble.length > 20) out.push(`  … ${trouble.length - 20} more`);
  out.push("");
  const how = f.killed ? "did not stop on SIGTERM in time: SIGKILLed" : `exit code ${f.exitCode ?? "?"}${f.signal ? ` (${f.signal})` : ""}`;
  out.push(`Fulcrum (pid ${f.pid}) stop on SIGTERM: ${how} after ${f.stopMs ?? "?"} ms.`);
  out.push(`Instances started during the run: ${instancePids.size} (PIDs ${[...instancePids.keys()].join(", ") || "none"}).`);
  out.push(
    left.length === 0
      ? "After the stop, /proc shows none of them alive, and no process whose parent or process group is Fulcrum or one of them."
      : `**LEFTOVER PROCESSES after the stop** (${left.length}): ${left.map((l) => `pid ${l.pid} [${l.how}] ${l.cmd}`).join("; ")}`,
  );
  return out.join("\n");
}

/** `abc1234 (working tree)`, with a note when src/ has uncommitted changes. */
function fulcrumRev(): string {
  const git = (...a: string[]) => Bun.spawnSync(["git", "-C", ROOT, ...a], { stdout: "pipe", stderr: "pipe" }).stdout.toString().trim();
  const rev = git("rev-parse", "--short", "HEAD") || "?";
  return git("status", "--porcelain", "--", "src") ? `${rev} + uncommitted changes in src/` : `${rev} (working tree)`;
}

// ───────────────────────────── main ─────────────────────────────

async function main(): Promise<number> {
  const configFile = writeConfig();
  const config = JSON.parse(readFileSync(configFile, "utf8")) as unknown;
  say(`temp dir ${TMP}; profile ${opt.profile.map((p) => `${p.end - p.start}s×${p.clients}`).join(", ")}; GET /work?ms=${opt.workMs}`);
  const began = performance.now();
  t0 = began; // provisional: log lines before the profile get negative times later
  fulcrum = startFulcrum(configFile);
  const f = fulcrum;
  const m = await waitLine(f, /Load balancer running on port (\d+)/, 30_000);
  const port = Number(m[1]);
  const baseUrl = `http://${HOST}:${port}`;
  say(`Fulcrum pid ${f.pid} on ${baseUrl} (ready after ${Math.round(performance.now() - began)} ms)`);

  // Pre-flight: min instances healthy and one request through.
  for (let i = 0; i < 100; i++) {
    if (aborting) throw new Error("aborting");
    try {
      const body = (await (await fetch(`${baseUrl}/lb-status`, { signal: AbortSignal.timeout(2000) })).json()) as StatusBody;
      if ((body.instances ?? []).filter((x) => x.managed && x.state === "healthy").length >= Math.max(1, opt.min)) break;
    } catch {}
    if (i === 99) throw new Error(`no healthy instance within 10 s; Fulcrum said:\n${tail(f)}`);
    await Bun.sleep(100);
  }
  const pre = await fetch(`${baseUrl}/work?ms=1`, { signal: AbortSignal.timeout(5000) });
  const preText = await pre.text();
  if (!pre.ok) throw new Error(`pre-flight GET /work?ms=1: ${pre.status} ${preText}`);

  // The profile clock starts now; earlier log lines are shifted to negative times.
  const shift = (performance.now() - t0) / 1000;
  t0 = performance.now();
  for (const l of f.lines) l.t -= shift;
  say(`profile starts (${PROFILE_SECONDS} s, up to ${MAX_CLIENTS} clients)`);
  const poller = pollStatus(baseUrl, PROFILE_SECONDS + opt.requestTimeoutMs / 1000 + 5);
  const progress = setInterval(() => {
    const p = polls[polls.length - 1];
    say(`t=${now().toFixed(0)}s clients ${clientsAt(now())} done ${totalOk + totalFailed} (failed ${totalFailed}) desired ${p?.desired ?? "?"} healthy ${p?.healthy ?? "?"}`);
  }, 10_000);
  try {
    await driveLoad(baseUrl);
  } finally {
    clearInterval(progress);
  }
  const profileEnd = now();
  // One last poll's worth, then stop polling.
  await Bun.sleep(opt.pollMs);
  pollStop = true;
  await Promise.race([poller, Bun.sleep(opt.pollMs * 3)]);

  say("stopping Fulcrum (SIGTERM)");
  await stopFulcrum();
  const left = await survivors();

  const rows = Math.max(Math.ceil(PROFILE_SECONDS), seconds.length);
  const out: string[] = [];
  out.push(`## Fulcrum autoscaling scenario`);
  out.push("");
  out.push(
    `${new Date().toISOString()} · Fulcrum ${fulcrumRev()} · Bun ${Bun.version} · ${navigator.hardwareConcurrency} CPUs (shared by the load generator, Fulcrum and every instance) · ` +
      `profile ${opt.profile.map((p) => `${p.end - p.start}s × ${p.clients} clients`).join(" → ")} · each client loops GET /work?ms=${opt.workMs} (closed loop, request timeout ${opt.requestTimeoutMs} ms)`,
  );
  out.push(`Config: ${JSON.stringify(config)}`);
  out.push("");
  out.push(`### Per second (requests by the second they completed; p50/p99 of the successful ones; instance columns from the last /lb-status poll in that second)`);
  out.push("");
  out.push(perSecondTable(rows));
  out.push("");
  out.push("### Chart");
  out.push("");
  out.push(chart(rows));
  out.push("");
  out.push("### Summary");
  out.push("");
  out.push(summary(f, left, profileEnd));
  console.log(out.join("\n"));
  if (env.RAW_JSON) {
    writeFileSync(env.RAW_JSON, JSON.stringify({ opt, config, seconds: seconds.map((s) => ({ ok: s.ok, failed: s.failed, latencies: s.latencies.map((x) => Math.round(x * 10) / 10) })), polls, log: f.lines }, null, 1));
    say(`raw data: ${env.RAW_JSON}`);
  }
  return left.length > 0 ? 3 : 0;
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
    pollStop = true;
    loadAbort.abort();
    void stopFulcrum()
      .then(() => survivors())
      .then((left) => {
        if (left.length) say(`LEFTOVER PROCESSES: ${left.map((l) => `pid ${l.pid} ${l.cmd}`).join("; ")}`);
        else say(`Fulcrum stopped (${fulcrum?.killed ? "SIGKILL" : `exit code ${fulcrum?.exitCode ?? "?"}`}); /proc shows none of its ${instancePids.size} instance(s) alive`);
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
    if (fulcrum) console.error(`--- Fulcrum output (tail) ---\n${tail(fulcrum, 40)}`);
  }
} finally {
  loadAbort.abort();
  pollStop = true;
  await stopFulcrum();
}
if (aborting) await new Promise(() => {}); // the signal handler exits
cleanTmp();
process.exit(code);
