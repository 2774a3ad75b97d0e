/**
 * defparam/smuggler (HTTP request smuggling / desync scanner, Python 3,
 * standard library only) against Fulcrum, per engine, with its exhaustive
 * payload set. Smuggler is not part of this repository: pass a checkout.
 *
 *   git clone https://github.com/defparam/smuggler /tmp/smuggler
 *   bun bench/smuggler.ts --smuggler /tmp/smuggler [--engines listen,serve] [--config exhaustive.py]
 *
 * For each mutation smuggler sends a CL.TE and a TE.CL probe and flags a
 * timing difference (a desync). Reported: mutations tried, how many were
 * flagged, and the statuses Fulcrum answered the probes with.
 */
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { arg, cleanup, spawnUntil } from "./procs.ts";

const smuggler = arg("smuggler", "");
if (!smuggler || !existsSync(join(smuggler, "smuggler.py"))) {
  console.error("usage: bun bench/smuggler.ts --smuggler <path to a defparam/smuggler checkout> [--engines listen,serve] [--config exhaustive.py]");
  process.exit(2);
}
const engines = arg("engines", "listen,serve").split(",");
const configFile = arg("config", "exhaustive.py");
const dir = mkdtempSync(join(tmpdir(), "fulcrum-smuggler-"));

try {
  const backend = await spawnUntil(["bun", "tests/fixtures/backend.ts", "--port", "0", "--name", "a"], /listening on (\d+)/);
  console.log(`\n### defparam/smuggler (${configFile}) against Fulcrum\n`);
  console.log("| engine | mutations | flagged (potential desync) | probe answers |");
  console.log("|---|---:|---:|---|");
  for (const engine of engines) {
    const file = join(dir, `${engine}.json`);
    writeFileSync(file, JSON.stringify({ listen: { port: 0, hostname: "127.0.0.1" }, backends: [`http://127.0.0.1:${backend.match[1]}`], proxy: { engine }, log: { access: false } }));
    const lb = await spawnUntil(["bun", "run", "src/main.ts", "--config", file], /Load balancer running on port (\d+)/);
    const run = Bun.spawn(["python3", "smuggler.py", "-u", `http://127.0.0.1:${lb.match[1]}/`, "-c", configFile, "--no-color", "-t", "3"], { cwd: smuggler, stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => run.kill(), 20 * 60_000);
    const out = (await new Response(run.stdout).text()).replaceAll("\r", "\n");
    clearTimeout(timer);
    await run.exited;
    const results = out.split("\n").filter((line) => /^\s*\[[^\]]+\]\s*: (?!Checking)/.test(line));
    const flagged = results.filter((line) => !/: OK /.test(line));
    const statuses = new Map<string, number>();
    for (const line of results) for (const m of line.matchAll(/(?:TECL|CLTE): [\d.]+ - (\d+)/g)) statuses.set(m[1] as string, (statuses.get(m[1] as string) ?? 0) + 1);
    const answers = [...statuses].map(([status, n]) => `${status} ×${n}`).join(", ");
    console.log(`| ${engine} | ${results.length} | ${flagged.length} | ${answers} |`);
    for (const line of flagged) console.log(`|  | | ${line.trim().replaceAll("|", "\\|")} | |`);
    lb.proc.kill("SIGTERM");
    await lb.proc.exited;
  }
} finally {
  cleanup();
}
