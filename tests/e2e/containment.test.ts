/**
 * Per-backend maxConnections with the queue, end to end: a backend never gets
 * more requests at once than its limit, the others wait their turn (first in,
 * first out) and are served, a wait longer than proxy.queue.timeout or a full
 * queue gets 503 with Retry-After, and queued requests show in /lb-status and
 * /lb-metrics. The retry budget keeps a pool that fails every request from
 * getting every request several times over.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { join } from "node:path";
import { cleanupAfterAll, startBackend, startFulcrum, tempDir, TEST_ENGINE, type Running } from "../helpers/procs.ts";

cleanupAfterAll();

let backend: Running;
beforeAll(async () => {
  backend = await startBackend("a");
});

async function balancer(queue: Record<string, number>): Promise<Running> {
  const file = join(tempDir(), "lb.json");
  await Bun.write(
    file,
    JSON.stringify({ listen: { port: 0, hostname: "127.0.0.1" }, backends: [{ url: backend.url, maxConnections: 2 }], proxy: { queue }, health: { interval: 60_000 }, log: { access: false } }),
  );
  return startFulcrum(["--config", file]);
}

interface Status {
  traffic?: { queued: number };
  instances: { activeRequests: number; maxConnections: number }[];
}
const status = async (lb: Running) => (await (await fetch(`${lb.url}/lb-status`)).json()) as Status;

describe("maxConnections and the queue", () => {
  let lb: Running;
  afterAll(async () => {
    await lb?.stop();
  });

  test("six requests to a backend limited to 2: never more than 2 at once there, all answered, in about three rounds", async () => {
    lb = await balancer({ size: 10, timeout: 5000 });
    const started = performance.now();
    const requests = Array.from({ length: 6 }, () => fetch(`${lb.url}/slow?ms=300`).then((r) => r.status));
    let peak = 0;
    let queuedSeen = 0;
    for (let i = 0; i < 12; i++) {
      const s = await status(lb);
      peak = Math.max(peak, s.instances[0]?.activeRequests ?? 0);
      queuedSeen = Math.max(queuedSeen, s.traffic?.queued ?? 0);
      await Bun.sleep(50);
    }
    expect(await Promise.all(requests)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(peak).toBe(2);
    expect(queuedSeen).toBeGreaterThanOrEqual(2);
    expect(performance.now() - started).toBeGreaterThanOrEqual(850); // three waves of 300 ms
    const metrics = await (await fetch(`${lb.url}/lb-metrics`)).text();
    expect(metrics).toContain(`fulcrum_backend_max_connections{backend="${backend.url}"} 2`);
    expect(metrics).toMatch(/^fulcrum_queued_requests 0$/m);
    expect((await status(lb)).instances[0]?.maxConnections).toBe(2);
  }, 20_000);

  test("a wait longer than proxy.queue.timeout gets 503 with Retry-After; a full queue gets it at once", async () => {
    await lb?.stop();
    lb = await balancer({ size: 1, timeout: 300 });
    const busy = [fetch(`${lb.url}/slow?ms=1500`), fetch(`${lb.url}/slow?ms=1500`)]; // both slots
    await Bun.sleep(100);
    const waited = performance.now();
    const queued = fetch(`${lb.url}/slow?ms=10`); // the one queue place
    await Bun.sleep(50);
    const refused = await fetch(`${lb.url}/slow?ms=10`); // queue full
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).not.toBeNull();
    expect(await refused.text()).toContain("queue is full");
    const timedOut = await queued;
    expect(timedOut.status).toBe(503);
    expect(await timedOut.text()).toContain("no backend slot free within 300ms");
    expect(performance.now() - waited).toBeGreaterThanOrEqual(280);
    expect((await Promise.all(busy)).map((r) => r.status)).toEqual([200, 200]);
    const metrics = await (await fetch(`${lb.url}/lb-metrics`)).text();
    expect(metrics).toContain('fulcrum_requests_total{backend="none",code="no_backend"} 2');
  }, 20_000);

  test(`(${TEST_ENGINE} engine) a slot freed by a finished response goes to the oldest waiter first`, async () => {
    await lb?.stop();
    lb = await balancer({ size: 10, timeout: 5000 });
    // One slot frees at 300 ms, the other stays taken: the waiters go one at a time through the first.
    const busy = [fetch(`${lb.url}/slow?ms=300`), fetch(`${lb.url}/slow?ms=1200`)];
    await Bun.sleep(100);
    const order: number[] = [];
    const waiters = [0, 1, 2].map(async (i) => {
      await Bun.sleep(i * 30); // queued in this order
      await (await fetch(`${lb.url}/slow?ms=50&n=${i}`)).text();
      order.push(i);
    });
    await Promise.all([...busy, ...waiters]);
    expect(order).toEqual([0, 1, 2]);
  }, 20_000);
});

describe("the retry budget", () => {
  test(`(${TEST_ENGINE} engine) ten requests to a pool that resets them all: one retry in flight at a time, the rest give up after the queue timeout`, async () => {
    // Three backends that hold every connection 300 ms, then close it unanswered.
    let requests = 0;
    const failing = Array.from({ length: 3 }, () =>
      Bun.listen({
        hostname: "127.0.0.1",
        port: 0,
        socket: {
          open(socket: Socket) {
            setTimeout(() => socket.end(), 300);
          },
          data(_socket: Socket, bytes: Buffer) {
            if (bytes.toString("latin1").startsWith("GET /fail")) requests++; // not the health probes
          },
        },
      }),
    );
    const file = join(tempDir(), "lb.json");
    await Bun.write(
      file,
      JSON.stringify({
        listen: { port: 0, hostname: "127.0.0.1" },
        backends: failing.map((s) => ({ url: `http://127.0.0.1:${s.port}` })),
        proxy: { retries: 2, retryBudget: { ratio: 0, min: 1 }, queue: { size: 100, timeout: 150 } },
        health: { interval: 60_000, path: "/probe" },
        log: { access: false },
      }),
    );
    const lb = await startFulcrum(["--config", file]);
    try {
      const statuses = await Promise.all(Array.from({ length: 10 }, (_, i) => fetch(`${lb.url}/fail?n=${i}`).then((r) => r.status)));
      expect(statuses).toEqual(Array(10).fill(502));
      // Ten first tries and one request's two retries; without the budget it would be thirty.
      expect(requests).toBe(12);
      const metrics = await (await fetch(`${lb.url}/lb-metrics`)).text();
      expect(metrics).toMatch(/^fulcrum_retries_denied_total 9$/m);
      expect(metrics).toMatch(/^fulcrum_retries_total 2$/m);
    } finally {
      await lb.stop();
      for (const s of failing) s.stop(true);
    }
  }, 20_000);
});
