/**
 * The proxy-correctness, WebSocket and hostile-input suites, run again over
 * the other upstream transport (proxy.transport: "fetch"; the default, "http1",
 * runs them in the normal pass): both transports must pass them unchanged.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { cleanupAfterAll, ROOT, spawnTracked } from "../helpers/procs.ts";

cleanupAfterAll();

test("proxy, websocket and hostile suites pass over the fetch transport", async () => {
  const suites = ["proxy", "websocket", "hostile"].map((name) => join(ROOT, `tests/e2e/${name}.test.ts`));
  const run = spawnTracked(["bun", "test", ...suites], { env: { FULCRUM_TEST_TRANSPORT: "fetch" } });
  const code = await run.proc.exited;
  await Bun.sleep(50);
  const output = run.stdout.text + run.stderr.text;
  if (code !== 0) console.error(output.split("\n").filter((l) => /^\(fail\)|error:|Expected|Received/.test(l)).join("\n"));
  expect(output).toMatch(/\n\s*\d+ pass\n\s*0 fail/);
  expect(code).toBe(0);
}, 180_000);
