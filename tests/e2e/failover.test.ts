/**
 * Failover under restarts: backends SIGKILLed and started again between health
 * probes must never cost a request while another backend is up (HAProxy loses
 * none in the same loop; bench/chaos.ts compares the two).
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runChaos } from "../helpers/chaos.ts";
import { cleanupAfterAll, restartableBackend, startFulcrum, tempDir } from "../helpers/procs.ts";

cleanupAfterAll();

function configFile(backends: readonly string[]): string {
  const file = join(tempDir(), "lb.json");
  writeFileSync(
    file,
    JSON.stringify({ listen: { port: 0, hostname: "127.0.0.1" }, backends, strategy: "round-robin", health: { interval: 1000 }, log: { access: false } }),
  );
  return file;
}

describe("failover while backends restart", () => {
  test("two backends killed and restarted in turn between probes: no request fails while one is up", async () => {
    const backends = await Promise.all([restartableBackend("a"), restartableBackend("b")]);
    const lb = await startFulcrum(["--config", configFile(backends.map((b) => b.url))]);
    const result = await runChaos({ url: lb.url, path: "/slow?ms=5", backends, clients: 16, durationMs: 9000, killEveryMs: 2000, downMs: 1000 });
    expect(result.kills).toBeGreaterThanOrEqual(3);
    expect(result.ok).toBeGreaterThan(1000);
    expect({ failed: result.failed, reasons: result.reasons }).toEqual({ failed: 0, reasons: {} });
  }, 30_000);

  test("three backends, one removed and added back by two SIGHUP reloads meanwhile: no request fails", async () => {
    const backends = await Promise.all([restartableBackend("a"), restartableBackend("b"), restartableBackend("c")]);
    const urls = backends.map((b) => b.url);
    const file = configFile(urls);
    const lb = await startFulcrum(["--config", file]);
    const reload = (list: readonly string[]) => async () => {
      writeFileSync(file, JSON.stringify({ ...JSON.parse(await Bun.file(file).text()), backends: list }));
      lb.proc.kill("SIGHUP");
      await lb.stdout.wait(new RegExp(`config reloaded[^\\n]*${list.length === 2 ? "removing" : "added"}`), 5000);
    };
    const result = await runChaos({
      url: lb.url,
      path: "/slow?ms=5",
      backends,
      clients: 16,
      durationMs: 9000,
      killEveryMs: 2000,
      downMs: 1000,
      events: [
        { atMs: 3500, name: "reload to two backends", run: reload(urls.slice(0, 2)) },
        { atMs: 6500, name: "reload back to three", run: reload(urls) },
      ],
    });
    expect(result.timeline.filter((line) => line.includes("reload"))).toHaveLength(2);
    expect({ failed: result.failed, reasons: result.reasons }).toEqual({ failed: 0, reasons: {} });
  }, 30_000);
});
