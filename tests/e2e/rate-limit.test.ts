/**
 * `rateLimit` as clients meet it: 429 with Retry-After past the burst, the
 * backend never sees refused requests, keys apart by IP or header, the
 * balancer's own endpoints exempt; with `store: "redis"` two Fulcrums share one
 * count, and a Redis that goes away lets traffic pass (logged).
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { cleanupAfterAll, spawnTracked, startBackend, startFulcrum, startRedis, tempDir, type Running } from "../helpers/procs.ts";

cleanupAfterAll();

let backend: Running;
beforeAll(async () => {
  backend = await startBackend("a");
});

async function balancer(rateLimit: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const file = join(tempDir(), "lb.json");
  await Bun.write(file, JSON.stringify({ listen: { port: 0, hostname: "127.0.0.1" }, backends: [backend.url], health: { interval: 60_000 }, rateLimit, ...extra }));
  return startFulcrum(["--config", file]);
}

const backendCount = async () => Number(await (await fetch(`${backend.url}/count`)).text());

/** Sends `n` requests one after another; returns their statuses. */
async function statuses(url: string, n: number, headers: Record<string, string> = {}): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(url, { headers });
    await res.arrayBuffer();
    out.push(res.status);
  }
  return out;
}

describe("memory store", () => {
  test("past the burst: 429 with Retry-After, and the backend never sees it", async () => {
    const lb = await balancer({ requestsPerSecond: 1, burst: 3 });
    const before = await backendCount();
    const res = await statuses(`${lb.url}/`, 5);
    expect(res).toEqual([200, 200, 200, 429, 429]);
    expect(await backendCount()).toBe(before + 3);

    const refused = await fetch(`${lb.url}/`);
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(await refused.text()).toStartWith("429 Too Many Requests");
    expect(lb.stdout.text).toContain("RESPONSE: GET / <- rate limit [429]");

    // The balancer's own endpoints are not limited.
    expect((await statuses(`${lb.url}/lb-health`, 5)).every((s) => s === 200)).toBe(true);
    // At 1 r/s one more request is allowed a second after the burst (and the next one a second later).
    await Bun.sleep(1050);
    expect(await statuses(`${lb.url}/`, 2)).toEqual([200, 429]);
    await lb.stop();
  });

  test("keyed by a header: one API key's exhaustion leaves another alone", async () => {
    const lb = await balancer({ requestsPerSecond: 1, burst: 2, key: "header:X-Api-Key" });
    expect(await statuses(`${lb.url}/`, 3, { "x-api-key": "alpha" })).toEqual([200, 200, 429]);
    expect(await statuses(`${lb.url}/`, 2, { "x-api-key": "beta" })).toEqual([200, 200]);
    await lb.stop();
  });

  test("concurrent bursts: exactly `burst` of 50 simultaneous requests pass", async () => {
    const lb = await balancer({ requestsPerSecond: 1, burst: 10 });
    const results = await Promise.all(Array.from({ length: 50 }, () => fetch(`${lb.url}/`).then((r) => r.status)));
    expect(results.filter((s) => s === 200).length).toBe(10);
    expect(results.filter((s) => s === 429).length).toBe(40);
    await lb.stop();
  });

  test("WebSocket upgrades count too", async () => {
    const lb = await balancer({ requestsPerSecond: 1, burst: 1 });
    expect(await statuses(`${lb.url}/`, 1)).toEqual([200]);
    const res = await fetch(`${lb.url}/ws`, { headers: { upgrade: "websocket", connection: "upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" } });
    expect(res.status).toBe(429);
    await lb.stop();
  });
});

describe("redis store", () => {
  test("two balancers on one Redis share one count; without Redis, traffic passes and a WARN says why", async () => {
    const redis = await startRedis();
    const extra = { cluster: { redis: redis.url } };
    const [one, two] = await Promise.all([
      balancer({ requestsPerSecond: 0.5, burst: 4, store: "redis" }, extra),
      balancer({ requestsPerSecond: 0.5, burst: 4, store: "redis" }, extra),
    ]);
    const interleaved: number[] = [];
    for (let i = 0; i < 4; i++) interleaved.push(...(await statuses(`${one.url}/`, 1)), ...(await statuses(`${two.url}/`, 1)));
    expect(interleaved.filter((s) => s === 200).length).toBe(4);
    expect(interleaved.slice(4)).toEqual([429, 429, 429, 429]);
    const refused = await fetch(`${two.url}/`);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);

    redis.proc.kill("SIGKILL");
    await redis.proc.exited;
    expect(await statuses(`${one.url}/`, 3)).toEqual([200, 200, 200]);
    await one.stdout.wait(/WARN: rate limit store \(redis\) unavailable, requests pass unlimited/);
    await Promise.all([one.stop(), two.stop()]);
  });

  test('store "redis" without a Redis URL is a config error', async () => {
    const file = join(tempDir(), "lb.json");
    await Bun.write(file, JSON.stringify({ backends: [backend.url], rateLimit: { requestsPerSecond: 1, store: "redis" } }));
    const check = spawnTracked(["bun", join(import.meta.dir, "../../src/main.ts"), "--config", file, "--check"], { env: { REDIS_URL: undefined } });
    expect(await check.proc.exited).toBe(1);
    expect(check.stderr.text + check.stdout.text).toContain('rateLimit.store: "redis" needs a Redis URL in cluster.redis (or REDIS_URL)');
  });
});
