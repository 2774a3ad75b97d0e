/**
 * A/B comparison of Fulcrum configurations: the same two backends, wrk at each
 * connection count, variants interleaved round by round (so a noisy minute hits
 * all of them), medians reported with ratios to the first variant.
 *
 *   bun bench/ab.ts                                   # engines: listen vs serve
 *   bun bench/ab.ts --variants features               # access log, strategies, ... on and off
 *   bun bench/ab.ts --rounds 5 --duration 8 --conns 64,256
 *
 * Each variant is a JSON overlay on a base config (round robin, access log off);
 * its `bench` key is for this script: `scrapeMs` scrapes /lb-metrics that often
 * during the run, `redis: true` starts a redis-server and sets `cluster.redis`.
 * Everything listens on 127.0.0.1 and is stopped by PID at the end.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { arg, cleanup, freePort, spawnUntil } from "./procs.ts";

const rounds = Number(arg("rounds", "3"));
const duration = Number(arg("duration", "6"));
const conns = arg("conns", "64,256").split(",").map(Number);

const VARIANT_SETS: Record<string, Record<string, object>> = {
  engines: {
    listen: { proxy: { engine: "listen" } },
    serve: { proxy: { engine: "serve" } },
  },
  memory: {
    listen: {},
    "listen, bun --smol": { bench: { smol: true } },
  },
  "body limit": {
    listen: { proxy: { engine: "listen" } },
    "listen, maxBodySize 8 GiB": { proxy: { engine: "listen", maxBodySize: 8 * 1024 ** 3 } },
    serve: { proxy: { engine: "serve" } },
    "serve, maxBodySize 8 GiB": { proxy: { engine: "serve", maxBodySize: 8 * 1024 ** 3 } },
  },
  features: {
    baseline: {},
    "access log on": { log: { access: true } },
    "least-load": { strategy: "least-load" },
    "hash": { strategy: "hash" },
    "trustProxy CIDRs": { proxy: { trustProxy: ["10.0.0.0/8"] } },
    // wrk is one client: a limit it never reaches measures the limiter's cost, not refusals.
    "rate limit (memory)": { rateLimit: { requestsPerSecond: 1e6, burst: 1e6 } },
    "rate limit (redis)": { rateLimit: { requestsPerSecond: 1e6, burst: 1e6, store: "redis" }, bench: { redis: true } },
    "metrics scraped every 1 s": { bench: { scrapeMs: 1000 } },
  },
  "rate limit": {
    off: {},
    memory: { rateLimit: { requestsPerSecond: 1e6, burst: 1e6 } },
    redis: { rateLimit: { requestsPerSecond: 1e6, burst: 1e6, store: "redis" }, bench: { redis: true } },
  },
};
const variants = VARIANT_SETS[arg("variants", "engines")];
if (!variants) throw new Error(`--variants: one of ${Object.keys(VARIANT_SETS).join(", ")}`);


function cpuTicks(pid: number): { user: number; sys: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(fields[11]), sys: Number(fields[12]) };
}
const activeOpens = () => {
  const lines = readFileSync("/proc/net/snmp", "utf8").split("\n").filter((l) => l.startsWith("Tcp:"));
  const names = (lines[0] ?? "").split(" ");
  return Number((lines[1] ?? "").split(" ")[names.indexOf("ActiveOpens")]);
};
const TICK_US = 1_000_000 / Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim() || 100);

interface Sample {
  rps: number;
  p99: number;
  userUs: number;
  sysUs: number;
  conns1k: number;
  /** Non-2xx answers and socket errors wrk saw. */
  errors: number;
  /** Highest VmRSS of the Fulcrum process during the run, MiB. */
  peakRssMiB: number;
}

function rssMiB(pid: number): number {
  const kib = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kib ?? 0) / 1024;
}

async function measure(pid: number, port: number, c: number, scrapeMs: number | undefined): Promise<Sample> {
  const before = cpuTicks(pid);
  const opens = activeOpens();
  const wrk = Bun.spawn(["wrk", "-t1", `-c${c}`, `-d${duration}s`, "--latency", `http://127.0.0.1:${port}/`], { stdout: "pipe" });
  const scraper = scrapeMs
    ? setInterval(() => void fetch(`http://127.0.0.1:${port}/lb-metrics`).then((r) => r.text()).catch(() => {}), scrapeMs)
    : undefined;
  let peakRssMiB = rssMiB(pid);
  const rssTimer = setInterval(() => (peakRssMiB = Math.max(peakRssMiB, rssMiB(pid))), 100);
  const out = await new Response(wrk.stdout).text();
  await wrk.exited;
  clearInterval(scraper);
  clearInterval(rssTimer);
  const after = cpuTicks(pid);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const p99text = /99%\s+([\d.]+)(us|ms|s)/.exec(out);
  const unit = { us: 0.001, ms: 1, s: 1000 }[(p99text?.[2] ?? "ms") as "us" | "ms" | "s"];
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    p99: Number(p99text?.[1] ?? 0) * unit,
    userUs: ((after.user - before.user) * TICK_US) / requests,
    sysUs: ((after.sys - before.sys) * TICK_US) / requests,
    conns1k: ((activeOpens() - opens - c - (scrapeMs ? (duration * 1000) / scrapeMs : 0)) * 1000) / requests,
    peakRssMiB,
    errors: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) + Number(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)?.slice(1).reduce((n, x) => n + Number(x), 0) ?? 0),
  };
}

/** A throwaway redis-server on a free port (for the Redis rate-limit store). */
async function startRedis(): Promise<string> {
  if (!Bun.which("redis-server")) throw new Error("a variant needs redis-server: apt-get install -y redis-server");
  const port = freePort();
  await spawnUntil(["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], /Ready to accept connections/);
  return `redis://127.0.0.1:${port}`;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

const dir = mkdtempSync(join(tmpdir(), "fulcrum-ab-"));
try {
  const backends = await Promise.all(
    ["a", "b"].map((name) => spawnUntil(["bun", "tests/fixtures/backend.ts", "--port", "0", "--name", name], /listening on (\d+)/)),
  );
  const urls = backends.map((b) => `http://127.0.0.1:${b.match[1]}`);
  const needsRedis = Object.values(variants).some((v) => (v as { bench?: { redis?: boolean } }).bench?.redis);
  const redisUrl = needsRedis ? await startRedis() : undefined;
  const results = new Map<string, Sample[]>();
  const names = Object.keys(variants);
  for (let round = 0; round < rounds; round++) {
    const order = names.map((_, i) => names[(i + round) % names.length] as string);
    for (const name of order) {
      const { bench = {}, ...overlay } = variants[name] as Record<string, object> & { bench?: { scrapeMs?: number; redis?: boolean; smol?: boolean } };
      const config = {
        listen: { port: 0, hostname: "127.0.0.1" },
        backends: urls,
        strategy: "round-robin",
        health: { interval: 5000 },
        ...overlay,
        log: { access: false, ...(overlay.log ?? {}) },
        proxy: { ...(overlay.proxy ?? {}) },
        ...(bench.redis ? { cluster: { redis: redisUrl } } : {}),
      };
      const file = join(dir, `${name.replace(/\W+/g, "-")}.json`);
      writeFileSync(file, JSON.stringify(config));
      const lb = await spawnUntil(["bun", ...(bench.smol ? ["--smol"] : []), "run", "src/main.ts", "--config", file], /Load balancer running on port (\d+)/);
      const port = Number(lb.match[1]);
      Bun.spawnSync(["wrk", "-t1", "-c64", "-d2s", `http://127.0.0.1:${port}/`]); // warm-up
      for (const c of conns) {
        const key = `${name}@${c}`;
        results.set(key, [...(results.get(key) ?? []), await measure(lb.proc.pid, port, c, bench.scrapeMs)]);
      }
      lb.proc.kill("SIGTERM");
      await lb.proc.exited;
      console.error(`round ${round + 1}/${rounds}: ${name} done`);
    }
  }
  for (const c of conns) {
    console.log(`\n### ${c} connections (wrk -t1 -c${c} -d${duration}s, median of ${rounds} rounds)\n`);
    console.log("| variant | req/s | vs first | p99 ms | CPU µs/req (user+sys) | vs first | new upstream conns/1k | peak RSS MiB | errors |");
    console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let base: { rps: number; cpu: number } | undefined;
    for (const name of names) {
      const samples = results.get(`${name}@${c}`) ?? [];
      const rps = median(samples.map((s) => s.rps));
      const cpu = median(samples.map((s) => s.userUs + s.sysUs));
      const user = median(samples.map((s) => s.userUs));
      base ??= { rps, cpu };
      console.log(
        `| ${name} | ${Math.round(rps).toLocaleString("en")} | ${(rps / base.rps).toFixed(2)}× | ${median(samples.map((s) => s.p99)).toFixed(2)} | ${cpu.toFixed(1)} (${user.toFixed(1)}+${(cpu - user).toFixed(1)}) | ${(cpu / base.cpu).toFixed(2)}× | ${median(samples.map((s) => s.conns1k)).toFixed(2)} | ${Math.max(...samples.map((s) => s.peakRssMiB)).toFixed(1)} | ${samples.reduce((n, s) => n + s.errors, 0)} |`,
      );
    }
  }
} finally {
  cleanup();
}
