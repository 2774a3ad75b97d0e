/**
 * The seed quickstart, literally: three `bun -e` backends on 3001-3003 and
 * `bun run src/main.ts --port 3000 --backend ...`. Round robin over them, the
 * SPEC's log lines, failover without failed requests, and rejoin.
 */
import { describe, expect, test } from "bun:test";
import { isPortFree } from "../../src/runtime/ports.ts";
import { cleanupAfterAll, spawnTracked, startFulcrum, waitFor } from "../helpers/procs.ts";

cleanupAfterAll();

/** The quickstart's ports are literal; say so plainly when something else holds them. */
function requireQuickstartPorts() {
  const busy = [3000, 3001, 3002, 3003].filter((p) => !isPortFree(p));
  if (busy.length > 0) throw new Error(`the quickstart needs ports 3000-3003, but ${busy.join(", ")} in use by another process`);
}

function quickstartBackend(n: number) {
  const spawned = spawnTracked(["bun", "-e", `Bun.serve({port: 300${n}, fetch() { return new Response('Backend ${n}') }})`]);
  return spawned;
}

async function waitListening(port: number) {
  await waitFor(() => fetch(`http://127.0.0.1:${port}/`).then((r) => r.ok), 10_000, `backend on ${port}`);
}

const args = ["--port", "3000", "--backend", "http://localhost:3001", "--backend", "http://localhost:3002", "--backend", "http://localhost:3003"];

describe("seed quickstart", () => {
  test("curl localhost:3000 cycles Backend 1, 2, 3, and the log shows the SPEC lines", async () => {
    requireQuickstartPorts();
    const backends = [1, 2, 3].map(quickstartBackend);
    await Promise.all([3001, 3002, 3003].map(waitListening));
    const lb = await startFulcrum(args);
    expect(lb.port).toBe(3000);

    const bodies: string[] = [];
    for (let i = 0; i < 6; i++) bodies.push(await (await fetch("http://localhost:3000")).text());
    expect(bodies).toEqual(["Backend 1", "Backend 2", "Backend 3", "Backend 1", "Backend 2", "Backend 3"]);

    await lb.stdout.wait(/RESPONSE: GET \/ <- http:\/\/localhost:3003 \[200\] \d+ms/);
    const log = lb.stdout.text;
    expect(log).toContain("INFO: Load balancer running on port 3000");
    expect(log).toContain("INFO: Backend servers: http://localhost:3001, http://localhost:3002, http://localhost:3003");
    expect(log).toMatch(/HEALTH: HEALTHY http:\/\/localhost:3001 - status: 200/);
    expect(log).toContain("REQUEST: GET / -> http://localhost:3001");
    expect(log).toMatch(/RESPONSE: GET \/ <- http:\/\/localhost:3001 \[200\] \d+ms/);

    expect(await lb.stop("SIGINT")).toBe(0);
    for (const b of backends) b.proc.kill("SIGKILL");
    await Promise.all(backends.map((b) => b.proc.exited));
  });

  test("a killed backend stops getting traffic, clients see no failure, and it rejoins when back", async () => {
    requireQuickstartPorts();
    const backends = [1, 2, 3].map(quickstartBackend);
    await Promise.all([3001, 3002, 3003].map(waitListening));
    // Same command, a faster health interval so the test is quick (interval 500 ms, fall 2).
    const lb = await startFulcrum(args, { env: { HEALTH_CHECK_INTERVAL: "500" } });

    backends[1]?.proc.kill("SIGKILL");
    await backends[1]?.proc.exited;

    const seen: string[] = [];
    const deadline = performance.now() + 2500; // more than one interval + fall
    while (performance.now() < deadline) {
      const res = await fetch("http://localhost:3000/");
      expect(res.status).toBe(200); // retried on another backend: the client never sees the dead one
      seen.push(await res.text());
      await Bun.sleep(20);
    }
    expect(seen).not.toContain("Backend 2");
    await lb.stdout.wait(/HEALTH: UNHEALTHY http:\/\/localhost:3002 - Connection refused/);

    const revived = quickstartBackend(2);
    await waitListening(3002);
    // The second HEALTHY line for 3002 (the first was at startup) marks the rejoin.
    await waitFor(() => lb.stdout.lines(/HEALTH: HEALTHY http:\/\/localhost:3002 - status: 200/).length >= 2, 5000, "3002 healthy again");
    await waitFor(async () => {
      const bodies = await Promise.all([1, 2, 3].map(() => fetch("http://localhost:3000/").then((r) => r.text())));
      return bodies.includes("Backend 2");
    }, 5000, "Backend 2 to receive traffic again");

    expect(await lb.stop()).toBe(0);
    for (const b of [...backends, revived]) b.proc.kill("SIGKILL");
  });
});
