/**
 * `bun build --compile` gives one binary that loads the shipped lb.config.ts
 * from disk (src/ is not next to it), runs managed instances with the Bun
 * embedded in itself, and serves the dashboard page embedded in it;
 * `fulcrum status` works there too.
 */
import { expect, test } from "bun:test";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { cleanupAfterAll, isAlive, MAIN, ROOT, spawnTracked, tempDir } from "../helpers/procs.ts";

cleanupAfterAll();

test("the compiled binary runs the shipped lb.config.ts away from the source tree", async () => {
  const dir = tempDir();
  const binary = join(dir, "fulcrum");
  const build = Bun.spawnSync(["bun", "build", "--compile", MAIN, "--outfile", binary], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  expect(build.exitCode).toBe(0);

  // A deployment directory: the binary, the config and the app, no src/.
  const deploy = join(dir, "deploy");
  mkdirSync(join(deploy, "examples"), { recursive: true });
  copyFileSync(join(ROOT, "lb.config.ts"), join(deploy, "lb.config.ts"));
  copyFileSync(join(ROOT, "examples/backend.ts"), join(deploy, "examples/backend.ts"));

  const run = spawnTracked([binary, "--port", "0"], { cwd: deploy, env: { PORT: undefined, PATH: "/nonexistent" } });
  // PATH has no bun: instances must run on the binary's own embedded Bun.
  const match = await run.stdout.wait(/Load balancer running on port (\d+)/, 20_000);
  const url = `http://127.0.0.1:${match[1]}`;
  expect(await (await fetch(url)).text()).toStartWith("Hello from backend on port");
  const status = (await (await fetch(`${url}/lb-status`)).json()) as { instances: { pid: number }[] };
  expect(status.instances).toHaveLength(2);
  // The dashboard's page and script are embedded in the binary, and its feed answers.
  const dashboard = await fetch(`${url}/lb-dashboard`);
  expect(dashboard.headers.get("content-type")).toBe("text/html; charset=utf-8");
  const html = await dashboard.text();
  expect(html).toContain("<title>Fulcrum dashboard</title>");
  expect(html).toContain("new EventSource(");
  const events = await fetch(`${url}/lb-events`);
  const reader = (events.body as ReadableStream<Uint8Array>).getReader();
  expect(new TextDecoder().decode((await reader.read()).value)).toContain("event: hello");
  await reader.cancel();
  // `fulcrum status`: the same command line as `bun run src/main.ts status`.
  const table = spawnTracked([binary, "status", "--url", url], { cwd: deploy, env: { PORT: undefined, PATH: "/nonexistent" } });
  expect(await table.proc.exited).toBe(0);
  await Bun.sleep(20);
  expect(table.stdout.text).toContain(`fulcrum  ${url}  strategy least-load`);
  for (const { pid } of status.instances) expect(table.stdout.text).toMatch(new RegExp(`^i\\d  \\S+ +${pid}  `, "m"));
  run.proc.kill("SIGTERM");
  expect(await run.proc.exited).toBe(0);
  for (const { pid } of status.instances) expect(isAlive(pid)).toBe(false);
  rmSync(dir, { recursive: true, force: true }); // the binary is ~100 MB
}, 60_000);
