/**
 * The proxy-correctness, WebSocket, hostile-input, failover, containment, circuit and chaos-proof suites, run
 * again on the serve engine (the design card's Bun.serve + fetch() path; the
 * default listen engine runs them in the normal pass): both engines must pass
 * them. Where Bun.serve behaves differently (pipelining), the suites say so.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { cleanupAfterAll, ROOT, spawnTracked } from "../helpers/procs.ts";

cleanupAfterAll();

test("proxy, websocket, hostile, failover, containment, circuit and chaos-proof suites pass on the serve engine", async () => {
  const suites = ["proxy", "websocket", "hostile", "failover", "containment", "circuit", "chaos-proof"].map((name) => join(ROOT, `tests/e2e/${name}.test.ts`));
  const run = spawnTracked(["bun", "test", ...suites], { env: { FULCRUM_TEST_ENGINE: "serve" } });
  const code = await run.proc.exited;
  await Bun.sleep(50);
  const output = run.stdout.text + run.stderr.text;
  if (code !== 0) console.error(output.split("\n").filter((l) => /^\(fail\)|error:|Expected|Received/.test(l)).join("\n"));
  expect(output).toMatch(/\n\s*\d+ pass\n\s*0 fail/);
  expect(code).toBe(0);
}, 240_000);
