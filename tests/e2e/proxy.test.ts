/**
 * The proxy as a client sees it: a real Fulcrum process in front of real
 * fixture backends, driven with real fetch and sockets.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cleanupAfterAll, startBackend, startFulcrum, tempDir, waitFor, type Running } from "../helpers/procs.ts";

cleanupAfterAll();

let a: Running;
let b: Running;
let lb: Running;

beforeAll(async () => {
  [a, b] = await Promise.all([startBackend("a"), startBackend("b")]);
  const dir = tempDir({
    "lb.json": JSON.stringify({
      listen: { port: 0, hostname: "127.0.0.1" },
      backends: [a.url, b.url],
      strategy: "round-robin",
      proxy: { responseTimeout: 1000, maxBodySize: 200 * 1024 * 1024 },
      health: { interval: 60_000 },
    }),
  });
  lb = await startFulcrum(["--config", `${dir}/lb.json`]);
});

afterAll(async () => {
  await lb.stop();
});

const headersAt = async (path = "/headers", init: RequestInit = {}) =>
  (await (await fetch(lb.url + path, init)).json()) as { name: string; method: string; url: string; headers: Record<string, string[]>; bodyBytes: number };

describe("forwarding", () => {
  test("alternates between the two backends (round robin)", async () => {
    const names = [];
    for (let i = 0; i < 4; i++) names.push(await (await fetch(lb.url)).text());
    expect(new Set(names)).toEqual(new Set(["backend a", "backend b"]));
    expect(names[0]).not.toBe(names[1]);
  });

  test("passes method, path and query through unchanged", async () => {
    const seen = await headersAt("/headers?x=1&y=%20two", { method: "PATCH", body: "abc" });
    expect(seen.method).toBe("PATCH");
    expect(new URL(seen.url).pathname + new URL(seen.url).search).toBe("/headers?x=1&y=%20two");
    expect(seen.bodyBytes).toBe(3);
  });

  test("adds X-Forwarded-For/Proto/Host and an X-Request-Id, keeps the client's Host", async () => {
    const seen = await headersAt("/headers", { headers: { "x-forwarded-for": "203.0.113.9" } });
    expect(seen.headers["x-forwarded-for"]).toEqual(["203.0.113.9, 127.0.0.1"]);
    expect(seen.headers["x-forwarded-proto"]).toEqual(["http"]);
    expect(seen.headers["x-forwarded-host"]).toEqual([`127.0.0.1:${lb.port}`]);
    expect(seen.headers.host).toEqual([`127.0.0.1:${lb.port}`]);
    const generated = seen.headers["x-request-id"]?.[0];
    expect(generated).toMatch(/^[0-9a-z-]{14,}$/);
    expect((await headersAt()).headers["x-request-id"]?.[0]).not.toBe(generated); // unique per request
    const kept = await headersAt("/headers", { headers: { "x-request-id": "trace-123" } });
    expect(kept.headers["x-request-id"]).toEqual(["trace-123"]);
  });

  test("strips hop-by-hop headers in both directions", async () => {
    const seen = await headersAt("/headers", { headers: { connection: "X-Secret", "x-secret": "1", "proxy-authorization": "Basic eA==" } });
    expect(seen.headers["x-secret"]).toBeUndefined();
    expect(seen.headers["proxy-authorization"]).toBeUndefined();
    const res = await fetch(`${lb.url}/hop`);
    expect(res.headers.get("x-secret")).toBeNull();
    expect(res.headers.get("keep-alive")).toBeNull();
    expect(res.headers.get("proxy-authenticate")).toBeNull();
    expect(res.headers.get("x-kept")).toBe("yes");
  });

  test("keeps multiple Set-Cookie headers apart", async () => {
    const res = await fetch(`${lb.url}/cookies`);
    expect(res.headers.getSetCookie()).toEqual(["a=1; Path=/", "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT"]);
  });

  test("passes redirects through instead of following them", async () => {
    const res = await fetch(`${lb.url}/redirect`, { redirect: "manual" });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("/elsewhere");
  });

  test("passes compressed bodies through byte for byte, Content-Encoding kept", async () => {
    const res = await fetch(`${lb.url}/gzip`, { decompress: false } as RequestInit);
    expect(res.headers.get("content-encoding")).toBe("gzip");
    const expected = Bun.gzipSync(new TextEncoder().encode("hello gzip ".repeat(100))); // what the fixture sends
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(new Uint8Array(expected));
  });

  test("passes backend status codes and bodies through", async () => {
    for (const status of [201, 404, 418, 500, 503]) {
      const res = await fetch(`${lb.url}/status/${status}`);
      expect(res.status).toBe(status);
      expect(await res.text()).toBe(`status ${status}`);
    }
  });
});

describe("streaming", () => {
  test("streams the response: the first chunk arrives long before the last is sent", async () => {
    const started = performance.now();
    const res = await fetch(`${lb.url}/drip?chunks=5&ms=150`);
    const reader = res.body!.getReader();
    const first = await reader.read();
    const firstAt = performance.now() - started;
    expect(new TextDecoder().decode(first.value)).toStartWith("chunk 0");
    while (!(await reader.read()).done);
    expect(firstAt).toBeLessThan(500); // the whole body takes ~750 ms
  });

  test("streams a request body larger than Bun's 128 MiB default cap", async () => {
    const size = 150 * 1024 * 1024;
    const chunk = new Uint8Array(1024 * 1024);
    let sent = 0;
    const body = new ReadableStream({
      pull(controller) {
        if (sent >= size) return controller.close();
        controller.enqueue(chunk);
        sent += chunk.byteLength;
      },
    });
    const res = await fetch(`${lb.url}/upload`, { method: "POST", body, duplex: "half" } as RequestInit);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(String(size));
  });

  test("echoes a body both ways at once (full duplex)", async () => {
    const parts = Array.from({ length: 20 }, (_, i) => `part ${i};`);
    const body = new ReadableStream({
      async pull(controller) {
        const next = parts.shift();
        if (next === undefined) return controller.close();
        controller.enqueue(new TextEncoder().encode(next));
        await Bun.sleep(5);
      },
    });
    const res = await fetch(`${lb.url}/echo`, { method: "POST", body, duplex: "half" } as RequestInit);
    expect(await res.text()).toBe(Array.from({ length: 20 }, (_, i) => `part ${i};`).join(""));
  });
});

describe("failures", () => {
  test("no first byte within responseTimeout is a 504", async () => {
    const res = await fetch(`${lb.url}/slow?ms=3000&case=timeout`);
    expect(res.status).toBe(504);
  });

  test("a client that goes away aborts the upstream request", async () => {
    const controller = new AbortController();
    const pending = fetch(`${lb.url}/slow?ms=900&case=abort`, { signal: controller.signal }).catch(() => "aborted");
    await Bun.sleep(200);
    controller.abort();
    expect(await pending).toBe("aborted");
    await waitFor(() => a.stdout.text.includes("aborted /slow?ms=900&case=abort") || b.stdout.text.includes("aborted /slow?ms=900&case=abort"), 3000, "backend to see the abort");
  });

  test("a body over maxBodySize is refused with 413 and never reaches a backend", async () => {
    const dir = tempDir({ "small.json": JSON.stringify({ listen: { port: 0, hostname: "127.0.0.1" }, backends: [a.url], proxy: { maxBodySize: 1024 } }) });
    const small = await startFulcrum(["--config", `${dir}/small.json`]);
    const before = await (await fetch(`${a.url}/count`)).text();
    const sized = await fetch(`${small.url}/upload`, { method: "POST", body: "x".repeat(2048) });
    expect(sized.status).toBe(413);
    const chunked = new ReadableStream({
      start(c) {
        for (let i = 0; i < 4; i++) c.enqueue(new Uint8Array(1024));
        c.close();
      },
    });
    const streamed = await fetch(`${small.url}/upload`, { method: "POST", body: chunked, duplex: "half" } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(await (await fetch(`${small.url}/upload`, { method: "POST", body: "x".repeat(1000) })).text()).toBe("1000");
    expect(Number(await (await fetch(`${a.url}/count`)).text())).toBeLessThanOrEqual(Number(before) + 2);
    await small.stop();
  });
});

describe("retries and dead backends", () => {
  test("a refused GET is retried on another backend; a refused POST with a body is a 502", async () => {
    const live = await startBackend("live");
    const dead = await startBackend("dead");
    const dir = tempDir({
      "lb.json": JSON.stringify({
        listen: { port: 0, hostname: "127.0.0.1" },
        backends: [dead.url, live.url],
        strategy: "round-robin",
        health: { interval: 60_000, eject: { consecutiveFailures: 0 } },
      }),
    });
    const proxy = await startFulcrum(["--config", `${dir}/lb.json`]);
    await dead.stop("SIGKILL");
    for (let i = 0; i < 4; i++) {
      const res = await fetch(proxy.url);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe("backend live");
    }
    // Round robin sends every other request to the dead backend first.
    const statuses = [];
    for (let i = 0; i < 2; i++) statuses.push((await fetch(`${proxy.url}/upload`, { method: "POST", body: "payload" })).status);
    expect(statuses.sort()).toEqual([200, 502]);
    await proxy.stop();
    await live.stop();
  });

  test("with no backend alive the answer is 503 with Retry-After", async () => {
    const doomed = await startBackend("doomed");
    const dir = tempDir({
      "lb.json": JSON.stringify({ listen: { port: 0, hostname: "127.0.0.1" }, backends: [doomed.url], health: { interval: 200, fall: 1 } }),
    });
    const proxy = await startFulcrum(["--config", `${dir}/lb.json`]);
    await doomed.stop("SIGKILL");
    await proxy.stdout.wait(/HEALTH: UNHEALTHY/);
    const res = await fetch(proxy.url);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    await proxy.stop();
  });
});

describe("status endpoints", () => {
  test("/lb-status reports each backend in the documented shape", async () => {
    const status = (await (await fetch(`${lb.url}/lb-status`)).json()) as Record<string, unknown> & { instances: Record<string, unknown>[] };
    expect(status.total).toBe(2);
    expect(status.healthy).toBe(2);
    expect(status.strategy).toBe("round-robin");
    expect(typeof status.uptime).toBe("number");
    expect(status.scaling).toEqual({ min: 0, max: 0, desired: 0, load: 0, lastAction: null });
    const first = status.instances[0]!;
    expect(Object.keys(first).sort()).toEqual(
      ["id", "url", "port", "pid", "managed", "state", "healthy", "circuit", "activeRequests", "totalRequests", "failedRequests", "responseTime", "load", "weight", "maxConnections", "restarts", "latency", "outcomes"].sort(),
    );
    // The response-time histogram: one count per bucket (14 bounds from 1 ms to 30 s, and one above).
    expect((first.latency as { counts: number[] }).counts).toHaveLength(15);
    expect(first).toMatchObject({ url: a.url, port: a.port, managed: false, state: "healthy", healthy: true, activeRequests: 0, weight: 1 });
    expect(first.totalRequests as number).toBeGreaterThan(0);
  });

  test("/lb-health answers 200 ok", async () => {
    const res = await fetch(`${lb.url}/lb-health`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("ok");
  });
});
