/**
 * Fulcrum benchmark harness. Run it through `bash bench/run.sh` (which installs
 * missing tools, makes the temp dir and kills leftovers by PID on exit); every
 * knob is an environment variable that run.sh sets from its flags.
 *
 *   1. Starts two fixture backends (tests/fixtures/backend.ts), then Fulcrum
 *      (1 process), nginx (worker_processes 1) and HAProxy (nbthread 1) in front
 *      of the same two, with configs generated into the temp dir. All on 127.0.0.1.
 *   2. wrk, interleaved: ROUNDS rounds; each round runs every target at every
 *      connection count (target order rotated per round and per count), each
 *      run preceded by a short warm-up. Per run: req/s, p99, errors, CPU µs per
 *      request of the proxy (and of the backends), peak RSS, new upstream TCP
 *      connections per 1,000 requests. Medians over rounds are reported.
 *   3. Large transfers (download, upload, full-duplex echo) through each target
 *      with bench/transfer.ts: MiB/s and the proxy's RSS before → peak → after.
 *   4. Prints Markdown to stdout, writes raw JSON to bench/results/.
 *
 * Every process it starts is stopped by PID (SIGTERM, then SIGKILL after a grace
 * period); every wait and loop has a count or time bound.
 */
import type { Subprocess } from "bun";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort, statFields, untilWoken, waitHttp } from "./procs.ts";

const ROOT = resolve(import.meta.dir, "..");
const BENCH = import.meta.dir;
const HOST = "127.0.0.1";

// ───────────────────────────── options ─────────────────────────────

const env = process.env;
const QUICK = env.QUICK === "1";
function int(value: string | undefined, fallback: number, min: number, max: number): number {
  const n = value === undefined || value === "" ? fallback : Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`expected an integer in [${min}, ${max}], got ${value}`);
  return n;
}
/** "10", "10s", "2m" → seconds. */
function secs(value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || value === "") return fallback;
  const m = /^(\d+(?:\.\d+)?)(s|m)?$/.exec(value.trim());
  if (!m) throw new Error(`bad duration: ${value} (use e.g. 10s or 1m)`);
  const n = Number(m[1]) * (m[2] === "m" ? 60 : 1);
  if (n < min || n > max) throw new Error(`duration ${value} outside [${min}s, ${max}s]`);
  return n;
}
const ALL_TARGETS = ["direct", "fulcrum", "nginx", "haproxy"] as const;
type TargetName = (typeof ALL_TARGETS)[number];

const opt = {
  quick: QUICK,
  rounds: int(env.ROUNDS, QUICK ? 1 : 3, 1, 20),
  duration: secs(env.DURATION, QUICK ? 5 : 15, 1, 300),
  warmup: secs(env.WARMUP, QUICK ? 1 : 3, 0, 60),
  conns: (env.CONNS ?? "64,256").split(/[\s,]+/).filter(Boolean).map((c) => int(c, 64, 1, 10_000)),
  // wrk -t1: the machine has 2 cores shared by wrk, the proxy under test and two
  // backends. One wrk thread (C, epoll) drives ~50k req/s here, well above any
  // proxy's rate on this box, while leaving as much CPU as possible to the proxy
  // and the backends; -t2 would let wrk compete for both cores.
  threads: int(env.WRK_THREADS, 1, 1, 16),
  wrkTimeout: secs(env.WRK_TIMEOUT, 2, 1, 60),
  targets: (env.TARGETS ?? ALL_TARGETS.join(",")).split(",").filter(Boolean) as TargetName[],
  transfers: env.TRANSFERS !== "0",
  transferRounds: int(env.TRANSFER_ROUNDS, 1, 1, 10),
  downloadMiB: int(env.DOWNLOAD_MIB, QUICK ? 64 : 512, 1, 8192),
  uploadMiB: int(env.UPLOAD_MIB, QUICK ? 32 : 128, 1, 8192),
  echoMiB: int(env.ECHO_MIB, QUICK ? 32 : 128, 1, 8192),
  stallSeconds: secs(env.STALL_SECONDS, QUICK ? 5 : 10, 1, 120),
  transferTimeout: secs(env.TRANSFER_TIMEOUT, QUICK ? 60 : 120, 5, 600),
  // nginx's idle upstream cache is one LRU shared by both servers, and either
  // server can have up to max(conns) requests in flight: 2 × 256 keeps nginx
  // from ever closing and reopening upstream connections (256 measured ~3-4
  // new connections per 1k requests at c=256; 512 measured ~0).
  nginxKeepalive: int(env.NGINX_KEEPALIVE, 512, 1, 100_000),
  /** Processes (Fulcrum cluster.workers, nginx worker_processes) or threads (HAProxy nbthread) per proxy. */
  workers: int(env.WORKERS, 1, 1, 16),
  resultsDir: env.RESULTS_DIR ?? join(BENCH, "results"),
  writeJson: env.WRITE_JSON !== "0",
};
for (const t of opt.targets) if (!ALL_TARGETS.includes(t)) throw new Error(`unknown target ${t}`);
if (!opt.targets.includes("nginx")) console.error("bench: nginx is not among TARGETS; ratios will be empty");
for (const c of opt.conns) if (c < opt.threads) throw new Error(`wrk needs connections (${c}) >= threads (${opt.threads})`);

const TMP = env.BENCH_TMP ?? mkdtempSync(join(tmpdir(), "fulcrum-bench-"));

/**
 * Where Fulcrum and the fixture backend run from: the working tree by default,
 * or, with FULCRUM_REF=<git rev>, a `git archive` of that commit in the temp dir
 * (a fixed, attributable build even while the working tree is being edited).
 */
const FULCRUM_REF = env.FULCRUM_REF ?? "";
let SRC = ROOT;
let srcLabel = "";
function prepareSource(): void {
  const git = (...a: string[]) => Bun.spawnSync(["git", "-C", ROOT, ...a], { stdout: "pipe", stderr: "pipe" });
  if (FULCRUM_REF) {
    const rev = git("rev-parse", "--verify", `${FULCRUM_REF}^{commit}`);
    if (rev.exitCode !== 0) throw new Error(`FULCRUM_REF ${FULCRUM_REF}: ${rev.stderr.toString().trim()}`);
    const commit = rev.stdout.toString().trim();
    SRC = join(TMP, "fulcrum-src");
    mkdirSync(SRC, { recursive: true });
    const archive = Bun.spawnSync(["sh", "-c", 'git -C "$1" archive "$2" | tar -x -C "$3"', "sh", ROOT, commit, SRC], { stderr: "pipe" });
    if (archive.exitCode !== 0) throw new Error(`git archive ${commit}: ${archive.stderr.toString().trim()}`);
    srcLabel = `${commit.slice(0, 7)} (git archive of ${FULCRUM_REF})`;
  } else {
    srcLabel = git("rev-parse", "--short", "HEAD").stdout.toString().trim();
    if (git("status", "--porcelain", "--", "src", "tests/fixtures").stdout.toString().trim() !== "") srcLabel += " + uncommitted changes in src/ or tests/fixtures/ (working tree)";
    else srcLabel += " (working tree)";
  }
}
const PID_FILE = env.BENCH_PIDS ?? join(TMP, "pids");
const say = (line: string) => console.error(`bench: ${line}`);

// ───────────────────────────── /proc ─────────────────────────────

const CLK_TCK = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;

/** utime + stime in clock ticks, all threads (field 14 + 15). */
function cpuTicks(pid: number): number {
  const f = statFields(pid);
  return f ? Number(f[11]) + Number(f[12]) : Number.NaN;
}
function startTime(pid: number): string {
  return statFields(pid)?.[19] ?? "?";
}
function parentOf(pid: number): number {
  return Number(statFields(pid)?.[1] ?? -1);
}
/** VmRSS and VmHWM in KiB. */
function memKiB(pid: number): { rss: number; hwm: number } {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8");
    const get = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? Number.NaN);
    return { rss: get("VmRSS"), hwm: get("VmHWM") };
  } catch {
    return { rss: Number.NaN, hwm: Number.NaN };
  }
}
/** Tcp: ActiveOpens from /proc/net/snmp (connect() calls that sent a SYN, namespace-wide). */
function activeOpens(): number {
  const lines = readFileSync("/proc/net/snmp", "utf8").split("\n").filter((l) => l.startsWith("Tcp:"));
  const names = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/);
  return Number(values[names.indexOf("ActiveOpens")]);
}
function childrenOf(pid: number): number[] {
  const kids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    if (parentOf(Number(entry)) === pid) kids.push(Number(entry));
  }
  return kids;
}
function alive(pid: number, start: string): boolean {
  const f = statFields(pid);
  return f !== undefined && f[0] !== "Z" && f[19] === start;
}

/** Samples VmRSS of some PIDs every `everyMs` until stopped; returns the peaks (KiB). */
function rssSampler(pids: number[], everyMs: number) {
  const peaks = pids.map((pid) => memKiB(pid).rss);
  const tick = () => pids.forEach((pid, i) => (peaks[i] = Math.max(peaks[i]!, memKiB(pid).rss || 0)));
  const timer = setInterval(tick, everyMs);
  return {
    stop(): number[] {
      clearInterval(timer);
      tick();
      return peaks;
    },
  };
}

// ───────────────────────────── processes ─────────────────────────────

/** Keeps a process's output (bounded) and lets callers wait for a line. */
class OutputLog {
  text = "";
  dropped = 0;
  #waiters = new Set<() => void>();
  consume(stream: ReadableStream<Uint8Array>): void {
    void (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) {
        this.text += decoder.decode(chunk, { stream: true });
        if (this.text.length > 1_000_000) {
          this.dropped += this.text.length - 500_000;
          this.text = this.text.slice(-500_000);
        }
        for (const wake of this.#waiters) wake();
      }
    })().catch(() => {});
  }
  wait(pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpMatchArray> {
    return untilWoken(
      this.#waiters,
      () => this.text.match(pattern) ?? undefined,
      timeoutMs,
      () => new Error(`timed out after ${timeoutMs} ms waiting for ${what}; output so far:\n${this.text.slice(-2000)}`),
    );
  }
}

interface Tracked {
  name: string;
  pid: number;
  start: string;
  proc?: Subprocess;
  log?: OutputLog;
  exitCode?: number | null;
  stopMs?: number;
}
const tracked: Tracked[] = [];

function track(name: string, pid: number, proc?: Subprocess, log?: OutputLog): Tracked {
  const t: Tracked = { name, pid, start: startTime(pid), proc, log };
  tracked.push(t);
  // run.sh's EXIT trap reads this file and kills whatever is still alive (PID + start time must match).
  appendFileSync(PID_FILE, `${pid} ${t.start} ${name}\n`);
  return t;
}

/** Set on SIGINT/SIGTERM: nothing new may start while everything is being stopped. */
let aborting = false;

function spawn(name: string, cmd: string[], cwd = SRC): Tracked {
  if (aborting) throw new Error("aborting");
  const proc = Bun.spawn(cmd, { cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env } });
  const log = new OutputLog();
  log.consume(proc.stdout);
  log.consume(proc.stderr);
  return track(name, proc.pid, proc, log);
}

async function stop(t: Tracked, graceMs = 12_000): Promise<void> {
  if (!alive(t.pid, t.start)) return;
  const began = performance.now();
  try {
    process.kill(t.pid, "SIGTERM");
  } catch {}
  const deadline = began + graceMs;
  while (alive(t.pid, t.start) && performance.now() < deadline) {
    if (t.proc) await Promise.race([t.proc.exited, Bun.sleep(50)]);
    else await Bun.sleep(50);
  }
  if (alive(t.pid, t.start)) {
    say(`${t.name} (pid ${t.pid}) ignored SIGTERM for ${graceMs} ms: SIGKILL`);
    try {
      process.kill(t.pid, "SIGKILL");
    } catch {}
  }
  t.stopMs = Math.round(performance.now() - began);
  if (t.proc) t.exitCode = await Promise.race([t.proc.exited, Bun.sleep(2000).then(() => null)]);
}

let stopping: Promise<void> | undefined;
function stopAll(): Promise<void> {
  // Newest first: proxies before backends, wrk/clients before everything.
  // nginx's worker is left to its master (stopping it first would make the
  // master start another); the second pass catches anything still alive.
  stopping ??= (async () => {
    for (const t of [...tracked].reverse()) if (t.name !== "nginx-worker") await stop(t);
    for (const t of tracked) await stop(t, 3000);
  })();
  return stopping;
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    aborting = true;
    say(`${signal}: stopping everything started`);
    void stopAll().then(() => process.exit(130));
  });
}

// ───────────────────────────── targets ─────────────────────────────

interface Target {
  name: TargetName;
  label: string;
  port: number;
  /** The main process (Fulcrum's primary, nginx's first worker, haproxy, or backend a for direct). */
  pid: number;
  /** Every process doing the target's work: CPU is summed over them, RSS too (sum of each one's peak). */
  pids: number[];
  main: Tracked;
}

const cpuOf = (t: Target) => t.pids.reduce((sum, pid) => sum + cpuTicks(pid), 0);
const rssOf = (t: Target) => t.pids.reduce((sum, pid) => sum + (memKiB(pid).rss || 0), 0);
const processes = (n: number, one: string, many: string) => (n === 1 ? one : many.replace("N", String(n)));

async function startBackend(name: string): Promise<Tracked & { port: number }> {
  const t = spawn(`backend-${name}`, ["bun", "tests/fixtures/backend.ts", "--port", "0", "--name", name]);
  const m = await t.log!.wait(/listening on (\d+)/, 15_000, `backend ${name}`);
  return Object.assign(t, { port: Number(m[1]) });
}

async function startFulcrum(backends: number[]): Promise<Target> {
  const file = join(TMP, "fulcrum.json");
  writeFileSync(
    file,
    JSON.stringify(
      {
        listen: { port: 0, hostname: HOST },
        backends: backends.map((p) => `http://${HOST}:${p}`),
        strategy: "round-robin",
        log: { access: false },
        health: { interval: 5000 },
        cluster: { workers: opt.workers },
        // The 100 MiB default would refuse the 128 MiB upload with 413; nginx
        // and HAProxy below have no body limit either.
        proxy: { maxBodySize: 8 * 1024 ** 3 },
      },
      null,
      2,
    ),
  );
  const t = spawn("fulcrum", ["bun", "run", "src/main.ts", "--config", file]);
  const m = await t.log!.wait(/Load balancer running on port (\d+)/, 20_000, "Fulcrum");
  const port = Number(m[1]);
  await waitHttp(`http://${HOST}:${port}/lb-status`, 10_000, "Fulcrum");
  // Its workers (cluster.workers > 1) are its only children here: the bench runs no managed instances.
  for (let i = 1; i < opt.workers; i++) await t.log!.wait(new RegExp(`worker ${i} serving on port`), 20_000, `Fulcrum worker ${i}`);
  const pids = [t.pid, ...childrenOf(t.pid)];
  return { name: "fulcrum", label: processes(opt.workers, "Fulcrum (1 process)", "Fulcrum (N processes)"), port, pid: t.pid, pids, main: t };
}

async function startNginx(backends: number[]): Promise<Target> {
  const dir = join(TMP, "nginx");
  for (const sub of ["", "client_body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(join(dir, sub), { recursive: true });
  const port = freePort();
  const isRoot = process.getuid?.() === 0;
  const streaming = `
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # Stream both ways like Fulcrum and HAProxy do (nginx's default would spool
      # big bodies to temp files first).
      proxy_buffering off;
      proxy_request_buffering off;
      client_max_body_size 0;`;
  const conf = `# generated by bench/harness.ts
${isRoot ? "user root;  # master runs as root here; workers need the temp dir" : ""}
worker_processes ${opt.workers};
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
worker_rlimit_nofile 16384;
events {
  worker_connections 8192;
}
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  # Client side: never close a wrk connection mid-run (nginx's default is 1000
  # requests per connection; the reconnects would be counted as ActiveOpens).
  keepalive_timeout 75s;
  keepalive_requests 10000000;
  upstream backends {
    server ${HOST}:${backends[0]};
    server ${HOST}:${backends[1]};
    # Idle upstream connections cached per worker (one LRU for both servers):
    # 2 × the highest concurrency, so nginx never closes and reopens them.
    keepalive ${opt.nginxKeepalive};
    keepalive_requests 10000000;
    keepalive_timeout 60s;
  }
  server {
    listen ${HOST}:${port} backlog=4096;
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    location = /download {${streaming}
    }
    location = /upload {${streaming}
    }
    location = /echo {${streaming}
    }
  }
}
`;
  writeFileSync(join(dir, "nginx.conf"), conf);
  const t = spawn("nginx-master", ["nginx", "-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")]);
  await waitHttp(`http://${HOST}:${port}/`, 10_000, "nginx");
  let workers: number[] = [];
  for (let i = 0; i < 50 && workers.length === 0; i++) {
    workers = childrenOf(t.pid);
    if (workers.length === 0) await Bun.sleep(100);
  }
  for (let i = 0; i < 50 && workers.length < opt.workers; i++) {
    await Bun.sleep(100);
    workers = childrenOf(t.pid);
  }
  if (workers.length !== opt.workers) throw new Error(`expected ${opt.workers} nginx worker(s) under pid ${t.pid}, found ${workers.length}`);
  for (const w of workers) track("nginx-worker", w);
  return { name: "nginx", label: processes(opt.workers, "nginx (1 worker)", "nginx (N workers)"), port, pid: workers[0]!, pids: workers, main: t };
}

async function startHaproxy(backends: number[]): Promise<Target> {
  const dir = join(TMP, "haproxy");
  mkdirSync(dir, { recursive: true });
  const port = freePort();
  const conf = `# generated by bench/harness.ts
global
  nbthread ${opt.workers}
  maxconn 4096
  # no "log" line: no logging
defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
  timeout http-request 60s
  # Share idle upstream connections between client connections.
  http-reuse always
frontend fe
  bind ${HOST}:${port}
  default_backend be
backend be
  balance roundrobin
  server a ${HOST}:${backends[0]}
  server b ${HOST}:${backends[1]}
`;
  const file = join(dir, "haproxy.cfg");
  writeFileSync(file, conf);
  const t = spawn("haproxy", ["haproxy", "-db", "-f", file]);
  await waitHttp(`http://${HOST}:${port}/`, 10_000, "haproxy");
  return { name: "haproxy", label: `HAProxy (nbthread ${opt.workers})`, port, pid: t.pid, pids: [t.pid], main: t };
}

// ───────────────────────────── wrk ─────────────────────────────

interface WrkOut {
  requests: number;
  duration_us: number;
  bytes: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latency_us: { mean: number; p50: number; p90: number; p99: number; max: number };
}

/** Runs wrk; `at` callbacks fire that many ms after wrk was started (for mid-run snapshots). */
async function wrk(url: string, conns: number, seconds: number, at: [number, () => void][] = []): Promise<{ out: WrkOut; text: string }> {
  if (aborting) throw new Error("aborting");
  const cmd = ["wrk", `-t${opt.threads}`, `-c${conns}`, `-d${seconds}s`, `--timeout`, `${opt.wrkTimeout}s`, "--latency", "-s", join(BENCH, "wrk-report.lua"), url];
  const proc = Bun.spawn(cmd, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const t = track("wrk", proc.pid, proc);
  const killer = setTimeout(() => proc.kill("SIGKILL"), (seconds + 30) * 1000);
  const timers = at.map(([ms, fn]) => setTimeout(fn, ms));
  const [text, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  clearTimeout(killer);
  timers.forEach(clearTimeout);
  tracked.splice(tracked.indexOf(t), 1);
  const m = /^WRK_JSON (.*)$/m.exec(text);
  if (!m) throw new Error(`wrk gave no summary (exit ${proc.exitCode}):\n${text}\n${err}`);
  return { out: JSON.parse(m[1]!) as WrkOut, text };
}

interface RunResult {
  round: number;
  target: TargetName;
  conns: number;
  order: number;
  requests: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: WrkOut["errors"];
  proxyCpuUsPerReq: number | null;
  backendCpuUsPerReq: number;
  peakRssKiB: number;
  activeOpensDelta: number;
  upstreamConnsPer1k: number;
  /** The same after the first second only (requests in that window estimated from the mean rate). */
  steadyConnsPer1k: number;
}

async function measure(target: Target, backends: Tracked[], conns: number, round: number, order: number): Promise<RunResult> {
  const url = `http://${HOST}:${target.port}/`;
  if (opt.warmup > 0) await wrk(url, conns, opt.warmup);
  await Bun.sleep(300);
  const backendPids = target.name === "direct" ? [backends[0]!.pid] : backends.map((b) => b.pid);
  const cpu0 = cpuOf(target);
  const bcpu0 = backendPids.reduce((s, p) => s + cpuTicks(p), 0);
  const opens0 = activeOpens();
  const sampler = rssSampler(target.pids, 100);
  // Steady state: wrk has opened all its connections well within the first
  // second, and upstream connections the warm-up's abrupt end cut have been
  // reopened; opens after this mark are churn.
  const started = performance.now();
  let mark: { opens: number; t: number } | undefined;
  const markMs = Math.min(1000, (opt.duration * 1000) / 3);
  const { out } = await wrk(url, conns, opt.duration, [[markMs, () => (mark = { opens: activeOpens(), t: performance.now() })]]);
  const ended = performance.now();
  const opens1 = activeOpens();
  const cpu1 = cpuOf(target);
  const bcpu1 = backendPids.reduce((s, p) => s + cpuTicks(p), 0);
  const peak = sampler.stop().reduce((a, b) => a + b, 0);
  const req = Math.max(1, out.requests);
  const usPerTick = 1e6 / CLK_TCK;
  const opens = opens1 - opens0;
  return {
    round,
    target: target.name,
    conns,
    order,
    requests: out.requests,
    rps: out.requests / (out.duration_us / 1e6),
    p50Ms: out.latency_us.p50 / 1000,
    p99Ms: out.latency_us.p99 / 1000,
    maxMs: out.latency_us.max / 1000,
    errors: out.errors,
    // For "direct" the measured process is backend a itself: its CPU goes in the backend column.
    proxyCpuUsPerReq: target.name === "direct" ? null : ((cpu1 - cpu0) * usPerTick) / req,
    backendCpuUsPerReq: ((bcpu1 - bcpu0) * usPerTick) / req,
    peakRssKiB: peak,
    activeOpensDelta: opens,
    // wrk itself opens exactly `conns` connections (more only if it reconnects after errors).
    upstreamConnsPer1k: (opens - conns) / (req / 1000),
    steadyConnsPer1k: mark
      ? // opens ÷ (requests in the window ÷ 1000); requests = mean req/s × window ms ÷ 1000
        (opens1 - mark.opens) / (((out.requests / (out.duration_us / 1e6)) * (Math.min(ended, started + opt.duration * 1000) - mark.t)) / 1e6)
      : Number.NaN,
  };
}

// ───────────────────────────── transfers ─────────────────────────────

interface TransferResult {
  target: TargetName;
  kind: "download" | "upload" | "echo";
  round: number;
  bytes: number;
  outcome: string;
  ok: boolean;
  status: number;
  sent: number;
  received: number;
  seconds: number;
  mibPerSec: number | null;
  error?: string;
  clientPeakRssMiB: number;
  firstByteMs: number | null;
  sentAtFirstByte: number | null;
  rssBeforeKiB: number;
  rssPeakKiB: number;
  rssAfterKiB: number;
  cpuSeconds: number;
}

async function transfer(target: Target, kind: TransferResult["kind"], mib: number, round: number): Promise<TransferResult> {
  const bytes = mib * 2 ** 20;
  const rssBefore = rssOf(target);
  const cpu0 = cpuOf(target);
  if (aborting) throw new Error("aborting");
  const sampler = rssSampler(target.pids, 50);
  const cmd = ["bun", join(BENCH, "transfer.ts"), kind, String(target.port), String(bytes), "--timeout", String(opt.transferTimeout), "--stall", String(opt.stallSeconds)];
  const proc = Bun.spawn(cmd, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const t = track("transfer", proc.pid, proc);
  const killer = setTimeout(() => proc.kill("SIGKILL"), (opt.transferTimeout + 30) * 1000);
  const [text, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  clearTimeout(killer);
  tracked.splice(tracked.indexOf(t), 1);
  const peak = sampler.stop().reduce((a, b) => a + b, 0);
  const cpu1 = cpuOf(target);
  await Bun.sleep(1000); // let the proxy settle (and free buffers) before "after"
  const rssAfter = rssOf(target);
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(text.trim().split("\n").at(-1) ?? "");
  } catch {
    r = { outcome: "client-crashed", ok: false, error: (err || text).slice(-500) };
  }
  return {
    target: target.name,
    kind,
    round,
    bytes,
    outcome: String(r.outcome),
    ok: r.ok === true,
    status: Number(r.status ?? 0),
    sent: Number(r.sent ?? 0),
    received: Number(r.received ?? 0),
    seconds: Number(r.seconds ?? 0),
    mibPerSec: (r.mibPerSec as number | null) ?? null,
    error: r.error as string | undefined,
    clientPeakRssMiB: Number(r.clientPeakRssMiB ?? 0),
    firstByteMs: (r.firstByteMs as number | null) ?? null,
    sentAtFirstByte: (r.sentAtFirstByte as number | null) ?? null,
    rssBeforeKiB: rssBefore,
    rssPeakKiB: peak!,
    rssAfterKiB: rssAfter,
    cpuSeconds: (cpu1 - cpu0) / CLK_TCK,
  };
}

// ───────────────────────────── report ─────────────────────────────

const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (x: number | null | undefined, digits = 1) =>
  x === null || x === undefined || !Number.isFinite(x) ? "—" : x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const mib = (kib: number) => fmt(kib / 1024, 1);
const ratio = (x: number, ref: number) => (Number.isFinite(x) && Number.isFinite(ref) && ref > 0 ? `${fmt(x / ref, 2)}×` : "—");

function errorText(runs: RunResult[]): string {
  const sum = { connect: 0, read: 0, write: 0, timeout: 0, status: 0 };
  for (const r of runs) for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += r.errors[k];
  const parts = Object.entries(sum)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k === "status" ? "non-2xx/3xx" : k} ${v.toLocaleString("en-US")}`);
  return parts.length ? `**${parts.join(", ")}**` : "0";
}

function wrkTables(results: RunResult[], targets: Target[]): string {
  const out: string[] = [];
  for (const conns of opt.conns) {
    const rows = targets.map((t) => {
      const runs = results.filter((r) => r.target === t.name && r.conns === conns);
      const rps = runs.map((r) => r.rps);
      return {
        t,
        runs,
        rps: median(rps),
        spread: rps.length > 1 ? (Math.max(...rps) - Math.min(...rps)) / median(rps) : Number.NaN,
        p99: median(runs.map((r) => r.p99Ms)),
        cpu: median(runs.map((r) => r.proxyCpuUsPerReq ?? Number.NaN)),
        bcpu: median(runs.map((r) => r.backendCpuUsPerReq)),
        rss: Math.max(...runs.map((r) => r.peakRssKiB)),
        up: median(runs.map((r) => r.upstreamConnsPer1k)),
        steady: median(runs.map((r) => r.steadyConnsPer1k)),
      };
    });
    const ng = rows.find((r) => r.t.name === "nginx");
    out.push(`### ${conns} connections (wrk -t${opt.threads} -c${conns} -d${opt.duration}s, median of ${opt.rounds} round${opt.rounds > 1 ? "s" : ""})`, "");
    out.push(
      "| target | req/s | vs nginx | spread | p99 latency | vs nginx | proxy CPU µs/req | backends CPU µs/req | peak RSS | new upstream conns / 1k req | … after 1st s | errors (all rounds) |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    );
    for (const r of rows) {
      out.push(
        `| ${r.t.label} | ${fmt(r.rps, 0)} | ${ratio(r.rps, ng?.rps ?? Number.NaN)} | ${Number.isFinite(r.spread) ? `±${fmt((r.spread * 100) / 2, 0)}%` : "—"} | ${fmt(r.p99, 2)} ms | ${ratio(r.p99, ng?.p99 ?? Number.NaN)} | ${fmt(r.cpu, 1)} | ${fmt(r.bcpu, 1)} | ${mib(r.rss)} MiB | ${r.t.name === "direct" ? `(${fmt(r.up, 2)})` : fmt(r.up, 2)} | ${r.t.name === "direct" ? `(${fmt(r.steady, 2)})` : fmt(r.steady, 2)} | ${errorText(r.runs)} |`,
      );
    }
    out.push("");
  }
  return out.join("\n");
}

function transferTable(results: TransferResult[], targets: Target[]): string {
  const out: string[] = [];
  out.push(
    "| transfer | target | result | MiB/s | RSS before → peak → after (MiB; the proxy, or the backend for direct) | CPU s (same process) | client peak RSS |",
    "|---|---|---|---:|---|---:|---:|",
  );
  const sizes = { download: opt.downloadMiB, upload: opt.uploadMiB, echo: opt.echoMiB };
  for (const kind of ["download", "upload", "echo"] as const) {
    for (const t of targets) {
      const runs = results.filter((r) => r.target === t.name && r.kind === kind);
      if (runs.length === 0) continue;
      const okRuns = runs.filter((r) => r.ok);
      const bad = runs.filter((r) => !r.ok);
      const duplex =
        kind === "echo" && okRuns.length
          ? `, 1st echoed byte after ${fmt(median(okRuns.map((r) => (r.sentAtFirstByte ?? Number.NaN) / 2 ** 20)), 2)} MiB sent`
          : "";
      const result =
        bad.length === 0
          ? `ok ×${runs.length}${duplex}`
          : bad
              .map((r) =>
                r.outcome === "stalled"
                  ? `**stalled** (after ${fmt(r.sent / 2 ** 20, 1)} MiB sent, ${fmt(r.received / 2 ** 20, 1)} MiB received)`
                  : `**${r.outcome}** (status ${r.status}, ${fmt(r.sent / 2 ** 20, 1)} MiB sent, ${fmt(r.received / 2 ** 20, 1)} MiB received${r.error ? `, ${r.error}` : ""})`,
              )
              .join("; ") + (okRuns.length ? `; ok ×${okRuns.length}` : "");
      const rss = runs.map((r) => `${mib(r.rssBeforeKiB)} → ${mib(r.rssPeakKiB)} → ${mib(r.rssAfterKiB)}`).join("; ");
      const label = kind === "echo" ? `echo ${sizes[kind]} MiB (full duplex)` : `${kind} ${sizes[kind]} MiB`;
      out.push(
        `| ${label} | ${t.label} | ${result} | ${fmt(median(okRuns.map((r) => r.mibPerSec ?? Number.NaN)), 0)} | ${rss} | ${fmt(median(runs.map((r) => r.cpuSeconds)), 2)} | ${fmt(Math.max(...runs.map((r) => r.clientPeakRssMiB)), 0)} MiB |`,
      );
    }
  }
  return out.join("\n");
}

function versions(): Record<string, string> {
  const run = (cmd: string[]) => {
    const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
    return (r.stdout.toString() + r.stderr.toString()).trim().split("\n")[0] ?? "";
  };
  return {
    fulcrum: srcLabel,
    bun: Bun.version,
    nginx: run(["nginx", "-v"]).replace("nginx version: ", ""),
    haproxy: run(["haproxy", "-v"]).split(" - ")[0] ?? "",
    wrk: run(["wrk", "--version"]).split(" Copyright")[0] ?? "",
    kernel: run(["uname", "-r"]),
    cpus: `${navigator.hardwareConcurrency} (${run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]).trim()})`,
  };
}

// ───────────────────────────── main ─────────────────────────────

async function main(): Promise<number> {
  const began = performance.now();
  prepareSource();
  const ver = versions();
  say(`tmp dir ${TMP}; ${JSON.stringify(opt)}`);

  const a = await startBackend("a");
  const b = await startBackend("b");
  const backends = [a, b];
  const all: Target[] = [];
  for (const name of opt.targets) {
    if (name === "direct") all.push({ name, label: "backend direct", port: a.port, pid: a.pid, pids: [a.pid], main: a });
    if (name === "fulcrum") all.push(await startFulcrum([a.port, b.port]));
    if (name === "nginx") all.push(await startNginx([a.port, b.port]));
    if (name === "haproxy") all.push(await startHaproxy([a.port, b.port]));
  }
  say(`backends :${a.port} :${b.port}; ${all.map((t) => `${t.name} :${t.port} (pid ${t.pid})`).join(", ")}`);

  // Pre-flight: each proxy answers and alternates over both backends.
  const preflight: Record<string, string[]> = {};
  for (const t of all) {
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`http://${HOST}:${t.port}/`, { signal: AbortSignal.timeout(5000) });
      seen.push(`${res.status} ${await res.text()}`);
    }
    preflight[t.name] = seen;
    if (seen.some((s) => !s.startsWith("200 "))) throw new Error(`${t.name} pre-flight failed: ${seen.join(" | ")}`);
    if (t.name !== "direct" && new Set(seen).size < 2) say(`WARNING: ${t.name} did not alternate over both backends: ${seen.join(" | ")}`);
  }

  const memBefore = Object.fromEntries(all.map((t) => [t.name, memKiB(t.pid)]));
  const results: RunResult[] = [];
  const total = opt.rounds * opt.conns.length * all.length;
  let n = 0;
  for (let round = 1; round <= opt.rounds; round++) {
    const conns = round % 2 ? opt.conns : [...opt.conns].reverse();
    for (const [ci, c] of conns.entries()) {
      const k = (round - 1 + ci) % all.length;
      const order = [...all.slice(k), ...all.slice(0, k)];
      for (const [oi, t] of order.entries()) {
        n++;
        const r = await measure(t, backends, c, round, oi);
        results.push(r);
        say(
          `[${n}/${total}] round ${round} c=${c} ${t.name}: ${fmt(r.rps, 0)} req/s, p99 ${fmt(r.p99Ms, 2)} ms, ` +
            `cpu ${fmt(r.proxyCpuUsPerReq)} µs/req, rss ${mib(r.peakRssKiB)} MiB, upstream opens ${r.activeOpensDelta - c} ` +
            `(${fmt(r.upstreamConnsPer1k, 2)}/1k, ${fmt(r.steadyConnsPer1k, 2)}/1k after 1st s), errors ${errorText([r])}`,
        );
      }
    }
  }
  const memAfterWrk = Object.fromEntries(all.map((t) => [t.name, memKiB(t.pid)]));

  const transfers: TransferResult[] = [];
  if (opt.transfers) {
    const kinds = [
      ["download", opt.downloadMiB],
      ["upload", opt.uploadMiB],
      ["echo", opt.echoMiB],
    ] as const;
    for (let round = 1; round <= opt.transferRounds; round++) {
      for (const [kind, size] of kinds) {
        for (const t of all) {
          const r = await transfer(t, kind, size, round);
          transfers.push(r);
          say(
            `transfer ${kind} ${size} MiB via ${t.name}: ${r.outcome}${r.ok ? "" : " (NOT ok)"} ${fmt(r.mibPerSec, 0)} MiB/s, ` +
              `rss ${mib(r.rssBeforeKiB)} → ${mib(r.rssPeakKiB)} → ${mib(r.rssAfterKiB)} MiB`,
          );
        }
      }
    }
  }

  // Fulcrum's own view, then a graceful stop of everything (timed).
  const fulcrum = all.find((t) => t.name === "fulcrum");
  let fulcrumStatus: unknown;
  if (fulcrum) {
    try {
      fulcrumStatus = await (await fetch(`http://${HOST}:${fulcrum.port}/lb-status`, { signal: AbortSignal.timeout(5000) })).json();
    } catch (e) {
      fulcrumStatus = { error: (e as Error).message };
    }
  }
  const memEnd = Object.fromEntries(all.map((t) => [t.name, memKiB(t.pid)]));
  await stopAll();
  const elapsed = (performance.now() - began) / 1000;

  // Anything a process said that looks like trouble.
  const trouble: string[] = [];
  for (const t of tracked) {
    const lines = (t.log?.text ?? "").split("\n").filter((l) => /error|warn|fail|unhealthy|eject|alert|emerg|crit/i.test(l));
    if (lines.length) trouble.push(`${t.name}: ${lines.length} line(s), e.g. ${lines.slice(0, 3).map((l) => JSON.stringify(l.slice(0, 200))).join(" / ")}`);
  }
  const nginxErrLog = join(TMP, "nginx", "error.log");
  if (existsSync(nginxErrLog)) {
    const lines = readFileSync(nginxErrLog, "utf8").split("\n").filter((l) => /\[(error|crit|alert|emerg)\]/.test(l));
    if (lines.length) trouble.push(`nginx error.log: ${lines.length} line(s), e.g. ${lines.slice(0, 3).map((l) => JSON.stringify(l.slice(0, 200))).join(" / ")}`);
  }
  const fulcrumTracked = tracked.find((t) => t.name === "fulcrum");

  // ── Markdown ──
  const md: string[] = [];
  md.push(`## Fulcrum benchmark${opt.quick ? " (quick mode)" : ""}`, "");
  md.push(
    `${new Date().toISOString()} · Fulcrum ${ver.fulcrum} on Bun ${ver.bun} · nginx ${ver.nginx} · ${ver.haproxy} · ${ver.wrk} · ` +
      `Linux ${ver.kernel} · ${ver.cpus} CPUs, shared with wrk and both backends · total ${fmt(elapsed / 60, 1)} min`,
    "",
  );
  md.push(
    `Interleaved: ${opt.rounds} round(s) × ${opt.conns.join("/")} connections × ${all.length} targets; ${opt.warmup}s warm-up before each ${opt.duration}s run; ` +
      `target order rotated each round. GET / → 2 Bun fixture backends (10-byte body), round robin. ` +
      `Ratios are to nginx (req/s: higher is better; p99: lower is better). ` +
      `"spread" = ±half the (max−min) range of req/s across rounds. CPU = utime+stime of the proxy process (nginx: its worker) ÷ requests. ` +
      `Peak RSS = highest VmRSS sampled every 100 ms over all rounds. New upstream conns = Tcp ActiveOpens delta − wrk's own connections, per 1,000 requests ` +
      `(in parentheses for "direct": a sanity check, should be 0); "… after 1st s" counts only opens after the first second of the run ` +
      `(requests in that window estimated from the mean rate), which leaves out reconnecting upstream connections that the previous wrk run's abrupt end cut.`,
    "",
  );
  md.push(wrkTables(results, all));
  if (opt.transfers) {
    md.push(
      `### Large transfers (one streaming client, bench/transfer.ts; ${opt.transferRounds} run(s) each; stall = no byte moved for ${opt.stallSeconds}s)`,
      "",
    );
    md.push(transferTable(transfers, all), "");
  }
  md.push("### Notes", "");
  md.push(`- RSS after the wrk rounds (VmRSS / VmHWM, MiB): ${all.map((t) => `${t.name} ${mib(memAfterWrk[t.name]!.rss)} / ${mib(memAfterWrk[t.name]!.hwm)} (start ${mib(memBefore[t.name]!.rss)})`).join("; ")}.`);
  md.push(`- RSS at the end: ${all.map((t) => `${t.name} ${mib(memEnd[t.name]!.rss)} / ${mib(memEnd[t.name]!.hwm)}`).join("; ")}.`);
  if (fulcrumTracked) md.push(`- Fulcrum stop on SIGTERM: exit code ${fulcrumTracked.exitCode ?? "?"} after ${fulcrumTracked.stopMs ?? "?"} ms.`);
  if (fulcrumStatus && typeof fulcrumStatus === "object" && "instances" in fulcrumStatus) {
    const inst = (fulcrumStatus as { instances: { url: string; healthy: boolean; totalRequests: number; failedRequests: number; activeRequests: number }[] }).instances;
    md.push(`- Fulcrum /lb-status at the end: ${inst.map((i) => `${i.url} healthy=${i.healthy} total=${i.totalRequests} failed=${i.failedRequests} active=${i.activeRequests}`).join("; ")}.`);
  }
  md.push(trouble.length ? `- Log lines that look like trouble: ${trouble.join("; ")}.` : "- No process logged errors or warnings.");
  const anyErrors = results.some((r) => Object.values(r.errors).some((v) => v > 0));
  md.push(anyErrors ? "- **wrk saw errors** (see the errors column; the target is zero)." : "- wrk saw no socket errors and no non-2xx/3xx responses.");
  md.push("");
  console.log(md.join("\n"));

  if (opt.writeJson) {
    mkdirSync(opt.resultsDir, { recursive: true });
    const file = join(opt.resultsDir, `bench-${new Date().toISOString().replace(/[:.]/g, "-")}${opt.quick ? "-quick" : ""}.json`);
    writeFileSync(
      file,
      JSON.stringify({ versions: ver, options: opt, preflight, runs: results, transfers, memBefore, memAfterWrk, memEnd, fulcrumStatus, trouble, elapsedSeconds: elapsed, markdown: md.join("\n") }, null, 2),
    );
    say(`raw results: ${file}`);
  }
  return 0;
}

let code = 1;
try {
  code = await main();
} catch (e) {
  if (aborting) {
    await stopAll();
    process.exit(130);
  }
  console.error(`bench: FAILED: ${(e as Error).stack ?? e}`);
  for (const t of tracked) if (t.log?.text) console.error(`--- ${t.name} output (tail) ---\n${t.log.text.slice(-1500)}`);
} finally {
  await stopAll();
}
process.exit(code);
