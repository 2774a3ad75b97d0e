/**
 * `bun src/main.ts status` as an operator runs it: a real process against a
 * running Fulcrum with two fixture backends; exit code 1 with one line when
 * nothing listens; `--watch` refreshing until SIGINT.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { cleanupAfterAll, MAIN, spawnTracked, startBackend, startFulcrum, waitFor, type Running } from "../helpers/procs.ts";

cleanupAfterAll();

let lb: Running;
let backends: Running[];
beforeAll(async () => {
  backends = await Promise.all([startBackend("a"), startBackend("b")]);
  lb = await startFulcrum(["--port", "0", "--strategy", "round-robin", ...backends.flatMap((b) => ["--backend", b.url])]);
  for (let i = 0; i < 4; i++) await fetch(lb.url);
});

/** Runs the status command to its end (bounded: killed after 10 s). */
async function status(args: string[], env: Record<string, string | undefined> = {}) {
  const run = spawnTracked(["bun", MAIN, "status", ...args], { env: { PORT: undefined, NO_COLOR: undefined, ...env } });
  const timer = setTimeout(() => run.proc.kill("SIGKILL"), 10_000);
  const code = await run.proc.exited;
  clearTimeout(timer);
  await Bun.sleep(20);
  return { code, stdout: run.stdout.text, stderr: run.stderr.text };
}

describe("fulcrum status", () => {
  test("prints the header and one row per backend, exit 0", async () => {
    const { code, stdout, stderr } = await status(["--url", lb.url]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split("\n");
    expect(lines[0]).toBe(`fulcrum  ${lb.url}  strategy round-robin  up ${lines[0]?.match(/up (\S+)/)?.[1]}  backends 2 (2 healthy)`);
    expect(lines).toContain("scaling  off (no managed instances)");
    expect(lines.find((l) => l.startsWith("id "))).toBe("id  url                     pid  state    healthy  in flight  requests  failed  resp time  load  weight  restarts");
    for (const [k, b] of backends.entries()) {
      expect(lines.find((l) => l.startsWith(`b${k + 1} `))).toMatch(new RegExp(`^b${k + 1}  ${b.url} +-  healthy  yes +0 +2 +0 +[\\d.]+ ms +0\\.\\d\\d +1 +-$`));
    }
    expect(stdout).not.toContain("\x1b["); // not a terminal: no colour
  });

  test("finds the balancer through PORT when no --url is given", async () => {
    const { code, stdout } = await status([], { PORT: String(lb.port) });
    expect(code).toBe(0);
    expect(stdout).toContain(backends[0]?.url as string);
  });

  test("a closed port: exit 1 and one line saying so", async () => {
    const closed = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
    const port = closed.port;
    await closed.stop(true);
    const { code, stdout, stderr } = await status(["--url", `http://127.0.0.1:${port}`]);
    expect(code).toBe(1);
    expect(stdout).toBe("");
    expect(stderr).toBe(`fulcrum status: cannot reach the balancer at http://127.0.0.1:${port}/lb-status: connection refused (is Fulcrum running there? pass --url)\n`);
  });

  test("something that is not Fulcrum: exit 1", async () => {
    const { code, stderr } = await status(["--url", `${backends[0]?.url}/status/200`]);
    expect(code).toBe(1);
    expect(stderr).toBe(`fulcrum status: ${backends[0]?.url}/status/200 did not answer with JSON: is it Fulcrum's /lb-status?\n`);
  });

  test("--watch prints a fresh table every second until SIGINT, then exits 0", async () => {
    const run = spawnTracked(["bun", MAIN, "status", "--url", lb.url, "--watch"], { env: { PORT: undefined } });
    const tables = () => run.stdout.lines(/^fulcrum  /).length;
    await waitFor(() => tables() >= 2, 3500, "two tables");
    run.proc.kill("SIGINT");
    const code = await Promise.race([run.proc.exited, Bun.sleep(3000).then(() => "still running")]);
    expect(code).toBe(0);
    expect(run.stdout.lines(/^b2  /).length).toBeGreaterThanOrEqual(2);
  });
});
