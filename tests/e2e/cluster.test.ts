/**
 * cluster.workers: several processes on one port. The primary probes, runs
 * instances and answers for the cluster; workers proxy with its pool. Real
 * processes, real signals.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { cleanupAfterAll, isAlive, randomBasePort, ROOT, type Running, startBackend, startFulcrum, tempDir, waitFor } from "../helpers/procs.ts";

cleanupAfterAll();

interface Status {
  total: number;
  healthy: number;
  workers?: { index: number; pid: number; totalRequests: number }[];
  instances: { id: string; pid: number | null; state: string; healthy: boolean; totalRequests: number }[];
}
const status = async (url: string) => (await (await fetch(`${url}/lb-status`, { headers: { connection: "close" } })).json()) as Status;

/** Requests on fresh connections, so SO_REUSEPORT spreads them over the processes. */
async function spread(url: string, n: number): Promise<string[]> {
  const bodies: string[] = [];
  for (let i = 0; i < n; i++) bodies.push(await (await fetch(url, { headers: { connection: "close" } })).text());
  return bodies;
}

let a: Running;
let b: Running;
beforeAll(async () => {
  [a, b] = await Promise.all([startBackend("a"), startBackend("b")]);
});

function clusterConfig(extra: Record<string, unknown> = {}): string {
  const dir = tempDir({
    "lb.json": JSON.stringify({ listen: { port: 0, hostname: "127.0.0.1" }, backends: [a.url, b.url], health: { interval: 300 }, cluster: { workers: 2 }, ...extra }),
  });
  return join(dir, "lb.json");
}

describe("cluster.workers", () => {
  test("two processes share the port and both serve; /lb-status adds their counts up", async () => {
    const lb = await startFulcrum(["--config", clusterConfig()]);
    expect(lb.stdout.text).toMatch(/Load balancer running on port \d+ \(2 processes\)/);
    await lb.stdout.wait(/worker 1 serving on port/);
    const bodies = await spread(lb.url, 100);
    expect(new Set(bodies)).toEqual(new Set(["backend a", "backend b"]));
    await Bun.sleep(400); // counters reach the primary every 100 ms
    const s = await status(lb.url);
    expect(s.workers).toHaveLength(2);
    for (const w of s.workers ?? []) expect(w.totalRequests).toBeGreaterThan(0);
    expect((s.workers ?? []).reduce((n, w) => n + w.totalRequests, 0)).toBeGreaterThanOrEqual(100);
    expect(s.instances.reduce((n, i) => n + i.totalRequests, 0)).toBeGreaterThanOrEqual(100);
    // /lb-metrics from whichever process answers tells the same cluster-wide story.
    for (let i = 0; i < 4; i++) {
      const metrics = await (await fetch(`${lb.url}/lb-metrics`, { headers: { connection: "close" } })).text();
      const total = [...metrics.matchAll(/^fulcrum_backend_requests_total\{.*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
      expect(total).toBeGreaterThanOrEqual(100);
      expect(metrics.match(/^fulcrum_worker_requests_total\{/gm)).toHaveLength(2);
    }

    const workerPid = s.workers?.find((w) => w.index === 1)?.pid as number;
    expect(await lb.stop()).toBe(0);
    expect(isAlive(workerPid)).toBe(false);
  });

  test("health seen by the primary reaches the workers", async () => {
    const doomed = await startBackend("doomed");
    const dir = tempDir({
      "lb.json": JSON.stringify({ listen: { port: 0, hostname: "127.0.0.1" }, backends: [a.url, doomed.url], health: { interval: 200, fall: 1 }, cluster: { workers: 2 }, proxy: { retries: 0 } }),
    });
    const lb = await startFulcrum(["--config", join(dir, "lb.json")]);
    await lb.stdout.wait(/worker 1 serving on port/);
    await doomed.stop("SIGKILL");
    await lb.stdout.wait(/HEALTH: UNHEALTHY/);
    await Bun.sleep(100);
    // With no retries, any process still routing to the dead backend would answer 502.
    const statuses = await Promise.all(Array.from({ length: 40 }, () => fetch(lb.url, { headers: { connection: "close" } }).then((r) => r.status)));
    expect(statuses.every((code) => code === 200)).toBe(true);
    await lb.stop();
  });

  test("a worker that dies is restarted; workers die with their primary", async () => {
    const lb = await startFulcrum(["--config", clusterConfig()]);
    await lb.stdout.wait(/worker 1 serving on port/);
    const first = (await waitFor(async () => (await status(lb.url)).workers?.find((w) => w.index === 1), 5000, "worker 1")).pid;
    process.kill(first, "SIGKILL");
    await lb.stdout.wait(/worker 1 \(pid \d+\) exited on SIGKILL; restarting it/);
    const second = await waitFor(async () => {
      const w = (await status(lb.url)).workers?.find((x) => x.index === 1);
      return w && w.pid !== first && isAlive(w.pid) ? w.pid : undefined;
    }, 10_000, "a new worker 1");

    lb.proc.kill("SIGKILL"); // the primary, abruptly
    await waitFor(() => !isAlive(second), 5000, "the worker to exit after its primary");
  });

  test("managed instances start once, admin works through any process, WORKER_COUNT sets the count", async () => {
    const dir = tempDir({
      "lb.json": JSON.stringify({
        listen: { port: 0, hostname: "127.0.0.1" },
        instances: { location: join(ROOT, "examples/backend.ts"), min: 1, max: 3, basePort: randomBasePort(), slowStart: 0 },
        scaling: { checkInterval: 60_000 },
        admin: { token: "t" },
      }),
    });
    const lb = await startFulcrum(["--config", join(dir, "lb.json")], { env: { WORKER_COUNT: "2" } });
    await lb.stdout.wait(/worker 1 serving on port/);
    expect(lb.stdout.text.match(/instance i\d+ starting/g)).toHaveLength(1);
    expect((await spread(lb.url, 20)).every((body) => body.startsWith("Hello from backend"))).toBe(true);

    // Some of these land on the worker, which hands them to the primary.
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${lb.url}/lb-admin/scale`, { method: "POST", headers: { authorization: "Bearer t", connection: "close" }, body: JSON.stringify({ desired: 2 }) });
      expect(await res.json()).toEqual({ desired: 2, clamped: false });
    }
    await waitFor(async () => (await status(lb.url)).instances.filter((i) => i.state === "healthy").length === 2, 15_000, "2 healthy instances");
    expect(lb.stdout.text.match(/instance i\d+ starting/g)).toHaveLength(2);
    const pids = (await status(lb.url)).instances.map((i) => i.pid as number);
    expect(await lb.stop()).toBe(0);
    expect(pids.some(isAlive)).toBe(false);
  });
});
