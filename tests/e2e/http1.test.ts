/**
 * What the listen engine's own HTTP/1.1 upstream client must get right that a well-behaved
 * backend never tests: interim responses, bodies ended by close, Connection:
 * close, garbage, truncation, keep-alive reuse, a backend closing a kept-alive
 * connection as it is reused, and big bodies. Backends: tests/fixtures/raw-backend.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { cleanupAfterAll, ROOT, spawnTracked, startFulcrum, tempDir, type Running } from "../helpers/procs.ts";

cleanupAfterAll();

async function rawBackend(...flags: string[]) {
  const spawned = spawnTracked(["bun", join(ROOT, "tests/fixtures/raw-backend.ts"), "--port", "0", ...flags]);
  const port = Number((await spawned.stdout.wait(/listening on (\d+)/))[1]);
  return { ...spawned, url: `http://127.0.0.1:${port}` };
}

function http1Config(backend: string): string {
  const dir = tempDir({
    "lb.json": JSON.stringify({
      listen: { port: 0, hostname: "127.0.0.1" },
      backends: [backend],
      proxy: { engine: "listen", retries: 0 },
      health: { interval: 60_000, eject: { consecutiveFailures: 0 } },
    }),
  });
  return join(dir, "lb.json");
}

let raw: Awaited<ReturnType<typeof rawBackend>>;
let lb: Running;
const connections = async () => Number(await (await fetch(`${raw.url}/connections`)).text());

beforeAll(async () => {
  raw = await rawBackend();
  lb = await startFulcrum(["--config", http1Config(raw.url)]);
  expect(lb.stdout.text).toContain("Engine: listen");
});
afterAll(async () => {
  await lb.stop();
});

describe("upstream HTTP/1.1 client", () => {
  test("keeps connections alive: 20 requests in a row open at most one new connection", async () => {
    await fetch(lb.url);
    const before = await connections();
    for (let i = 0; i < 20; i++) expect(await (await fetch(lb.url)).text()).toBe("raw ok");
    expect((await connections()) - before).toBeLessThanOrEqual(2); // +1: the /connections request itself
  });

  test("skips an interim 100 Continue and delivers the real response", async () => {
    const res = await fetch(`${lb.url}/interim`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("after interim");
  });

  test("a body that ends when the backend closes arrives whole, and the next request still works", async () => {
    expect(await (await fetch(`${lb.url}/close`)).text()).toBe("body until close");
    expect(await (await fetch(lb.url)).text()).toBe("raw ok");
  });

  test("Connection: close is honoured: that connection is not reused", async () => {
    expect(await (await fetch(`${lb.url}/conn-close`)).text()).toBe("closing after this");
    expect(await (await fetch(lb.url)).text()).toBe("raw ok");
  });

  test("a garbage response is a 502, and the balancer carries on", async () => {
    const res = await fetch(`${lb.url}/garbage`);
    expect(res.status).toBe(502);
    expect(await (await fetch(lb.url)).text()).toBe("raw ok");
  });

  test("a body cut short by the backend fails that response only", async () => {
    const outcome = await fetch(`${lb.url}/truncated`).then(
      (r) => r.text().then((t) => `read ${t.length} bytes`, () => "body failed"),
      () => "request failed",
    );
    expect(outcome).not.toBe("read 100 bytes");
    expect(await (await fetch(lb.url)).text()).toBe("raw ok");
  });

  test("status codes pass through", async () => {
    const res = await fetch(`${lb.url}/status/503`);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe("status 503");
  });

  test("bodies up to 256 KiB keep their Content-Length; bigger ones arrive byte for byte", async () => {
    const small = await fetch(`${lb.url}/big?bytes=100000`);
    expect(small.headers.get("content-length")).toBe("100000");
    expect((await small.arrayBuffer()).byteLength).toBe(100000);
    const big = await fetch(`${lb.url}/big?bytes=${5 * 1024 * 1024}`);
    const bytes = new Uint8Array(await big.arrayBuffer());
    expect(bytes.byteLength).toBe(5 * 1024 * 1024);
    expect(bytes.every((b) => b === 121)).toBe(true); // "y"
  });

  test("a kept-alive connection the backend closes as it is reused is retried on a fresh one, unseen by the client", async () => {
    const dropping = await rawBackend("--drop-reused");
    const proxy = await startFulcrum(["--config", http1Config(dropping.url)]);
    for (let i = 0; i < 5; i++) {
      // retries: 0 and one backend: a 200 here can only come from the client's own retry.
      expect(await (await fetch(proxy.url)).text()).toBe("raw ok");
      expect((await fetch(`${proxy.url}/x`, { method: "PUT", body: "small replayable body" })).status).toBe(200);
    }
    const status = (await (await fetch(`${proxy.url}/lb-status`)).json()) as { instances: { failedRequests: number }[] };
    expect(status.instances[0]?.failedRequests).toBe(0);
    await proxy.stop();
  });
});
