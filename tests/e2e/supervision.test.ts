/**
 * Process supervision with real processes and signals: crash loops end in
 * `failed`, a SIGKILLed Fulcrum's children are stopped by the next run, ports
 * in use are skipped, and rolling restarts lose no request under load.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { isPortFree } from "../../src/runtime/ports.ts";
import { cleanupAfterAll, isAlive, MAIN, randomBasePort, ROOT, spawnTracked, startFulcrum, tempDir, waitFor } from "../helpers/procs.ts";
import { runLoad } from "../helpers/load.ts";

cleanupAfterAll();

interface Status {
  total: number;
  instances: { id: string; pid: number | null; port: number; state: string; restarts: number }[];
}
const status = async (url: string) => (await (await fetch(`${url}/lb-status`)).json()) as Status;

function managed(dir: string, instances: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  const file = join(dir, "lb.json");
  require("node:fs").writeFileSync(
    file,
    JSON.stringify({
      listen: { port: 0, hostname: "127.0.0.1" },
      instances: { location: join(ROOT, "examples/backend.ts"), basePort: randomBasePort(), slowStart: 0, ...instances },
      health: { interval: 300 },
      scaling: { checkInterval: 60_000 },
      log: { access: false },
      ...extra,
    }),
  );
  return file;
}

describe("crash handling", () => {
  test("an instance that keeps dying is restarted with backoff, then marked failed", async () => {
    const dir = tempDir({ "crash.ts": 'console.error("boom: cannot start"); process.exit(3);' });
    const lb = await startFulcrum(["--config", managed(dir, { location: join(dir, "crash.ts"), min: 1, maxRestarts: 3 })]);
    await lb.stdout.wait(/instance i1 failed: 4 quick deaths in a row; not restarting it/, 10_000);
    const delays = [...lb.stdout.text.matchAll(/restarting instance i1 in (\d+)ms/g)].map((m) => Number(m[1]));
    expect(delays).toEqual([100, 150, 225]);
    expect(lb.stdout.text).toContain("INSTANCE: [i1] boom: cannot start"); // its stderr, whole line, with its id
    const s = await status(lb.url);
    expect(s.instances).toEqual([expect.objectContaining({ id: "i1", state: "failed", pid: null, restarts: 3 })]);
    expect((await fetch(lb.url)).status).toBe(503);
    await lb.stop();
  });
});

describe("no orphans", () => {
  test("after Fulcrum is SIGKILLed, the next run stops the previous run's instances before starting its own", async () => {
    const dir = tempDir();
    const file = managed(dir, { min: 2 });
    const first = await startFulcrum(["--config", file]);
    const orphans = (await status(first.url)).instances.map((i) => i.pid!);
    expect(orphans).toHaveLength(2);

    first.proc.kill("SIGKILL");
    await first.proc.exited;
    await Bun.sleep(200);
    expect(orphans.every(isAlive)).toBe(true); // Bun does not take children down with it (oven-sh/bun#7440)

    const second = await startFulcrum(["--config", file]);
    for (const pid of orphans) expect(second.stdout.text).toContain(`stopping instance pid ${pid} left over from a previous run`);
    expect(orphans.some(isAlive)).toBe(false);
    const fresh = (await status(second.url)).instances.map((i) => i.pid!);
    expect(fresh.every(isAlive)).toBe(true);

    expect(await second.stop()).toBe(0);
    expect(fresh.some(isAlive)).toBe(false);
  });

  test("a second Fulcrum on the same config refuses to start while the first runs", async () => {
    const dir = tempDir();
    const file = managed(dir, { min: 1 });
    const first = await startFulcrum(["--config", file]);
    const second = spawnTracked(["bun", MAIN, "--config", file, "--port", "0"]);
    expect(await second.proc.exited).toBe(1);
    expect(second.stdout.text + second.stderr.text).toMatch(/another Fulcrum \(pid \d+\) is running with this config/);
    expect((await status(first.url)).total).toBe(1); // the first one's instance was not touched
    await first.stop();
  });
});

describe("ports", () => {
  test("a port already in use is skipped", async () => {
    let basePort = randomBasePort();
    while (![0, 1, 2].every((i) => isPortFree(basePort + i))) basePort = randomBasePort();
    const squatter = Bun.listen({ hostname: "0.0.0.0", port: basePort, socket: { data() {} } });
    const dir = tempDir();
    const lb = await startFulcrum(["--config", managed(dir, { min: 2, basePort })]);
    const ports = (await status(lb.url)).instances.map((i) => i.port).sort();
    expect(ports).toEqual([basePort + 1, basePort + 2]);
    await lb.stop();
    squatter.stop(true);
  });
});

describe("rolling restart", () => {
  for (const trigger of ["POST /lb-admin/restart", "SIGUSR2"] as const) {
    test(`${trigger} replaces every instance one at a time without failing a request under load`, async () => {
      const dir = tempDir();
      const lb = await startFulcrum(["--config", managed(dir, { min: 3 }, { admin: { token: "s3cret" } })]);
      const before = (await status(lb.url)).instances.map((i) => i.pid);

      const stopLoad = new AbortController();
      const load = runLoad(`${lb.url}/work?ms=30`, 10, 30_000, stopLoad.signal);
      await Bun.sleep(300);
      if (trigger === "SIGUSR2") lb.proc.kill("SIGUSR2");
      else {
        const res = await fetch(`${lb.url}/lb-admin/restart`, { method: "POST", headers: { authorization: "Bearer s3cret" } });
        expect(res.status).toBe(202);
        expect(await res.json()).toEqual({ restarting: 3 });
      }
      await lb.stdout.wait(/rolling restart done: 3 instance\(s\) replaced/, 25_000);
      stopLoad.abort();
      const result = await load;
      expect(result.failures).toEqual([]);
      expect(result.ok).toBeGreaterThan(100);

      const after = (await status(lb.url)).instances;
      expect(after).toHaveLength(3);
      expect(after.every((i) => i.state === "healthy")).toBe(true);
      expect(after.some((i) => before.includes(i.pid))).toBe(false);
      expect(before.some((pid) => isAlive(pid!))).toBe(false);
      await lb.stop();
    }, 40_000);
  }
});
