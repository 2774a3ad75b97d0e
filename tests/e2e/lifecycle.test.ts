/**
 * Managed instances and process signals, with real processes: Fulcrum spawns
 * examples/backend.ts, routes only to ready instances, replaces one that dies,
 * and on SIGTERM/SIGINT finishes in-flight requests and leaves no child behind.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { cleanupAfterAll, isAlive, randomBasePort, ROOT, startBackend, startFulcrum, tempDir, waitFor } from "../helpers/procs.ts";

cleanupAfterAll();

interface Status {
  total: number;
  healthy: number;
  instances: { id: string; pid: number | null; port: number; managed: boolean; state: string; healthy: boolean }[];
}
const status = async (url: string) => (await (await fetch(`${url}/lb-status`)).json()) as Status;


function managedConfig(instances: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  const dir = tempDir({
    "lb.json": JSON.stringify({
      listen: { port: 0, hostname: "127.0.0.1" },
      instances: { location: join(ROOT, "examples/backend.ts"), basePort: randomBasePort(), ...instances },
      health: { interval: 300 },
      ...extra,
    }),
  });
  return join(dir, "lb.json");
}

describe("managed instances", () => {
  test("starts `min` instances, routes to them, logs their output, and stops them on SIGTERM", async () => {
    const lb = await startFulcrum(["--config", managedConfig({ min: 2 })]);
    const s = await status(lb.url);
    expect(s.total).toBe(2);
    expect(s.instances.every((i) => i.managed && i.state === "healthy" && i.pid !== null)).toBe(true);
    const pids = s.instances.map((i) => i.pid as number);
    expect(pids.every(isAlive)).toBe(true);

    const answers = new Set<string>();
    for (let i = 0; i < 6; i++) answers.add(await (await fetch(lb.url)).text());
    expect(answers.size).toBe(2); // both instances answered
    expect(lb.stdout.text).toMatch(/INSTANCE: \[i1\] backend listening on port \d+/);

    expect(await lb.stop("SIGTERM")).toBe(0);
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
  });

  test("a killed instance is replaced by a new one that takes traffic", async () => {
    const lb = await startFulcrum(["--config", managedConfig({ min: 1 })]);
    const [first] = (await status(lb.url)).instances;
    process.kill(first!.pid!, "SIGKILL");
    await lb.stdout.wait(/instance i1 \(pid \d+\) exited on SIGKILL/);
    await lb.stdout.wait(/restarting instance i1 in 100ms \(restart 1\)/);
    const replaced = await waitFor(async () => {
      const s = await status(lb.url);
      return s.instances.find((i) => i.state === "healthy" && i.pid !== first!.pid);
    }, 10_000, "a replacement instance");
    expect(isAlive(replaced.pid!)).toBe(true);
    expect((await fetch(lb.url)).status).toBe(200);
    expect(await lb.stop()).toBe(0);
    expect(isAlive(replaced.pid!)).toBe(false);
  });

  test("an instance that ignores SIGTERM is killed after stopTimeout", async () => {
    const dir = tempDir({
      "stubborn.ts": `
        process.on("SIGTERM", () => console.log("ignoring SIGTERM"));
        const port = Number(process.argv[process.argv.indexOf("--port") + 1]);
        Bun.serve({ port, fetch: () => new Response("stubborn") });`,
    });
    const lb = await startFulcrum(["--config", managedConfig({ location: join(dir, "stubborn.ts"), min: 1, stopTimeout: 500 })]);
    const pid = (await status(lb.url)).instances[0]!.pid!;
    const started = performance.now();
    expect(await lb.stop("SIGTERM")).toBe(0);
    expect(performance.now() - started).toBeGreaterThanOrEqual(450);
    expect(lb.stdout.text).toContain("ignored SIGTERM for 500ms; killed it");
    expect(isAlive(pid)).toBe(false);
  });

  test("an instance that never gets ready is not routed to, and Fulcrum says why", async () => {
    const dir = tempDir({ "mute.ts": "setInterval(() => {}, 1000); // never listens" });
    const lb = await startFulcrum(["--config", managedConfig({ location: join(dir, "mute.ts"), min: 1, startTimeout: 700, stopTimeout: 500 })]);
    expect(lb.stdout.text).toContain("did not answer /health within 700ms; stopping it");
    expect((await fetch(lb.url)).status).toBe(503);
    await lb.stop(); // SIGTERM: Fulcrum stops its instances too
  });
});

describe("graceful shutdown", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    test(`${signal}: in-flight requests finish, new connections are refused, exit code 0`, async () => {
      const backend = await startBackend("slow");
      const lb = await startFulcrum(["--port", "0", "--backend", backend.url]);
      const inflight = fetch(`${lb.url}/slow?ms=800`).then(async (r) => [r.status, await r.text()] as const);
      await Bun.sleep(150);
      lb.proc.kill(signal);
      await lb.stdout.wait(/shutting down/);
      const refused = await fetch(lb.url).then(
        () => "served",
        () => "refused",
      );
      expect(refused).toBe("refused");
      expect(await inflight).toEqual([200, "slow slow"]);
      expect(await lb.proc.exited).toBe(0);
      await backend.stop();
    });
  }
});
