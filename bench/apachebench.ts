/**
 * The distributed balancer's own load test, `ab -n 10000 -c 100` (Debian's
 * apache2-utils), with and without `-k`, through Fulcrum and nginx with the
 * same worker count, in front of the same two Bun backends; rounds
 * interleaved. `ab -k` speaks HTTP/1.0 with `Connection: Keep-Alive`: it only
 * reuses connections through a proxy that keeps HTTP/1.0 connections open.
 *
 *   bun bench/apachebench.ts                         # 2 workers each, 3 rounds
 *   bun bench/apachebench.ts --workers 1 --rounds 5 --requests 20000
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNginx } from "./peers.ts";
import { arg, cleanup, spawnUntil } from "./procs.ts";

const workers = Number(arg("workers", "2"));
const rounds = Number(arg("rounds", "3"));
const requests = Number(arg("requests", "10000"));
const concurrency = Number(arg("concurrency", "100"));
const dir = mkdtempSync(join(tmpdir(), "fulcrum-ab-"));

interface AbRun {
  rps: number;
  failed: number;
  non2xx: number;
  keepAlive: number;
}

async function ab(url: string, keepAlive: boolean): Promise<AbRun> {
  const run = Bun.spawn(["ab", ...(keepAlive ? ["-k"] : []), "-q", "-n", String(requests), "-c", String(concurrency), `${url}/`], { stdout: "pipe", stderr: "pipe" });
  const out = await new Response(run.stdout).text();
  await run.exited;
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? Number.NaN);
  return {
    rps: num(/Requests per second:\s+([\d.]+)/),
    failed: num(/Failed requests:\s+(\d+)/),
    non2xx: Number(/Non-2xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0),
    keepAlive: Number(/Keep-Alive requests:\s+(\d+)/.exec(out)?.[1] ?? 0),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

try {
  if (!Bun.which("ab")) throw new Error("needs ab: apt-get install -y apache2-utils");
  const backends = await Promise.all(["a", "b"].map((name) => spawnUntil(["bun", "tests/fixtures/backend.ts", "--port", "0", "--name", name], /listening on (\d+)/)));
  const ports = backends.map((b) => Number(b.match[1]));
  const file = join(dir, "fulcrum.json");
  writeFileSync(file, JSON.stringify({ listen: { port: 0, hostname: "127.0.0.1" }, backends: ports.map((p) => `http://127.0.0.1:${p}`), strategy: "round-robin", cluster: { workers }, log: { access: false } }));
  const fulcrum = await spawnUntil(["bun", "run", "src/main.ts", "--config", file], /Load balancer running on port (\d+)/);
  await Bun.sleep(1000); // the workers start after the primary listens
  const nginx = await startNginx(join(dir, "nginx"), { backends: ports, workers, keepalive: 512 });
  const targets = { Fulcrum: `http://127.0.0.1:${fulcrum.match[1]}`, nginx: nginx.url };
  // The same warm-up for both (Fulcrum's JIT warms in the first tens of thousands of requests; nginx has none).
  for (const url of Object.values(targets)) for (const keepAlive of [false, true]) await ab(url, keepAlive);
  const results = new Map<string, AbRun[]>();
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? (["Fulcrum", "nginx"] as const) : (["nginx", "Fulcrum"] as const);
    for (const name of order) {
      for (const keepAlive of [false, true]) {
        const key = `${name}|${keepAlive}`;
        results.set(key, [...(results.get(key) ?? []), await ab(targets[name], keepAlive)]);
      }
    }
    console.error(`round ${round + 1}/${rounds} done`);
  }
  console.log(`\n### ab -n ${requests} -c ${concurrency}, ${workers} worker(s) each, median of ${rounds} interleaved rounds\n`);
  console.log("| target | ab flags | req/s | vs nginx | failed | non-2xx | keep-alive requests |");
  console.log("|---|---|---:|---:|---:|---:|---:|");
  for (const keepAlive of [false, true]) {
    const base = median((results.get(`nginx|${keepAlive}`) ?? []).map((r) => r.rps));
    for (const name of ["Fulcrum", "nginx"]) {
      const runs = results.get(`${name}|${keepAlive}`) ?? [];
      const rps = median(runs.map((r) => r.rps));
      const sum = (f: (r: AbRun) => number) => runs.reduce((n, r) => n + f(r), 0);
      console.log(`| ${name} | ${keepAlive ? "-k" : "(none)"} | ${Math.round(rps).toLocaleString("en")} | ${(rps / base).toFixed(2)}× | ${sum((r) => r.failed)} | ${sum((r) => r.non2xx)} | ${median(runs.map((r) => r.keepAlive)).toLocaleString("en")} |`);
    }
  }
} finally {
  cleanup();
}
