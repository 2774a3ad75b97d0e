/**
 * Where Fulcrum's CPU goes under load: runs it with `bun --cpu-prof` behind two
 * fixture backends, drives it with wrk, stops it (the profile is written on
 * exit) and prints the top self-time functions and the share per source file.
 *
 *   bun bench/profile.ts                          # 64 connections, 10 s, the default engine (listen)
 *   bun bench/profile.ts --conns 256 --duration 15 --engine serve --top 30
 *
 * Everything listens on 127.0.0.1 and is stopped by PID at the end. The
 * profile file stays in the printed temp directory (open it in Chrome DevTools).
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { arg, cleanup, ROOT, spawnUntil } from "./procs.ts";

const conns = Number(arg("conns", "64"));
const duration = Number(arg("duration", "10"));
const engine = arg("engine", "listen");
const top = Number(arg("top", "25"));

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}


/** Self time per function and per file, in ms, from a Chrome-format CPU profile. */
function summarize(profile: CpuProfile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const perFunction = new Map<string, number>();
  const perFile = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    const frame = byId.get(id)?.callFrame;
    if (!frame || ms <= 0) return;
    total += ms;
    const file = frame.url ? (frame.url.startsWith(ROOT) ? relative(ROOT, frame.url) : frame.url.replace(/^.*\//, "")) : "(native)";
    const name = `${frame.functionName || "(anonymous)"}  ${file}${frame.url ? `:${frame.lineNumber + 1}` : ""}`;
    perFunction.set(name, (perFunction.get(name) ?? 0) + ms);
    perFile.set(file, (perFile.get(file) ?? 0) + ms);
  });
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return { total, functions: sorted(perFunction), files: sorted(perFile) };
}

const dir = mkdtempSync(join(tmpdir(), "fulcrum-profile-"));
try {
  const backends = await Promise.all(
    ["a", "b"].map((name) => spawnUntil(["bun", "tests/fixtures/backend.ts", "--port", "0", "--name", name], /listening on (\d+)/)),
  );
  const config = join(dir, "lb.json");
  writeFileSync(
    config,
    JSON.stringify({
      listen: { port: 0, hostname: "127.0.0.1" },
      backends: backends.map((b) => `http://127.0.0.1:${b.match[1]}`),
      strategy: "round-robin",
      log: { access: false },
      proxy: { engine },
    }),
  );
  const lb = await spawnUntil(["bun", "--cpu-prof", `--cpu-prof-dir=${dir}`, "run", "src/main.ts", "--config", config], /Load balancer running on port (\d+)/);
  const url = `http://127.0.0.1:${lb.match[1]}/`;
  Bun.spawnSync(["wrk", "-t1", "-c64", "-d2s", url]); // warm-up (in the profile too; short next to the run)
  // `--load ab-k`: ApacheBench's HTTP/1.0 keep-alive requests instead of wrk's HTTP/1.1 ones.
  const load = arg("load", "wrk");
  const run =
    load === "ab-k"
      ? Bun.spawnSync(["ab", "-k", "-q", "-t", String(duration), "-n", "10000000", "-c", String(conns), url], { stdout: "pipe" })
      : Bun.spawnSync(["wrk", "-t1", `-c${conns}`, `-d${duration}s`, url], { stdout: "pipe" });
  const out = run.stdout.toString();
  const requests = Number((load === "ab-k" ? /Complete requests:\s+(\d+)/ : /(\d+) requests in/).exec(out)?.[1] ?? 0);
  lb.proc.kill("SIGTERM");
  await lb.proc.exited;

  const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
  if (!file) throw new Error(`no .cpuprofile written in ${dir}`);
  const { total, functions, files } = summarize(JSON.parse(readFileSync(join(dir, file), "utf8")) as CpuProfile);
  const pct = (ms: number) => `${((ms / total) * 100).toFixed(1)}%`;
  console.log(`\n### Fulcrum CPU profile: ${engine} engine, ${arg("load", "wrk")} -c${conns} -d${duration}s, ${requests.toLocaleString("en")} requests (+2 s warm-up)\n`);
  console.log(`Samples cover ${(total / 1000).toFixed(1)} s of the main thread (idle time included as "(idle)" when Bun reports it).\n`);
  console.log("| self | function |\n|---:|---|");
  for (const [name, ms] of functions.slice(0, top)) console.log(`| ${pct(ms)} | \`${name}\` |`);
  console.log("\n| self | file |\n|---:|---|");
  for (const [name, ms] of files.slice(0, 15)) console.log(`| ${pct(ms)} | \`${name}\` |`);
  console.log(`\nProfile: ${join(dir, file)}`);
} finally {
  cleanup();
}
