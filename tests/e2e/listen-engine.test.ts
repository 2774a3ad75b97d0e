/**
 * What the listen engine does that Bun.serve could not: the request target and
 * fields reach the backend byte for byte (the audit's findings), pipelined and
 * HTTP/1.0 keep-alive requests are served, Content-Length is kept at any size
 * and never invented, trailers are accepted, a body that turns bad mid-stream
 * never completes upstream, 100 Continue only for HTTP/1.1, and the limits of
 * its own (`proxy.headerTimeout`, `proxy.maxConnections`).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { cleanupAfterAll, ROOT, spawnTracked, startBackend, startFulcrum, tempDir, waitFor, type Running } from "../helpers/procs.ts";
import { raw, RawConn, responsesOf } from "../helpers/raw-http.ts";
import { startRawRecorder, type RawRecorder } from "../helpers/raw-recorder.ts";

cleanupAfterAll();

function config(backends: string[], proxy: Record<string, unknown> = {}): string {
  const dir = tempDir({
    "lb.json": JSON.stringify({
      listen: { port: 0, hostname: "127.0.0.1" },
      backends,
      proxy: { engine: "listen", ...proxy },
      health: { interval: 60_000 },
      log: { access: false },
    }),
  });
  return join(dir, "lb.json");
}

let recorder: RawRecorder;
let backend: Running;
let rawBackend: { url: string };
let lbRec: Running;
let lb: Running;
let lbRaw: Running;

beforeAll(async () => {
  recorder = startRawRecorder();
  backend = await startBackend("a");
  const spawned = spawnTracked(["bun", join(ROOT, "tests/fixtures/raw-backend.ts"), "--port", "0"]);
  rawBackend = { url: `http://127.0.0.1:${(await spawned.stdout.wait(/listening on (\d+)/))[1]}` };
  [lbRec, lb, lbRaw] = await Promise.all([
    startFulcrum(["--config", config([recorder.url])]),
    startFulcrum(["--config", config([backend.url], { headerTimeout: 700, maxConnections: 8 })]),
    startFulcrum(["--config", config([rawBackend.url])]),
  ]);
});

afterAll(async () => {
  await Promise.all([lbRec?.stop(), lb?.stop(), lbRaw?.stop()]);
  recorder?.stop();
});

/** What the recorder got for the request(s) sent by `send`. */
async function recorded(send: () => Promise<unknown>) {
  const before = recorder.arrived.length;
  await send();
  await Bun.sleep(30);
  return recorder.arrived.slice(before).filter((m) => m.url !== "/health");
}
const fieldsOf = (m: { headers: [string, string][] }) => m.headers.map(([name, value]) => `${name}: ${value}`);

describe("byte for byte to the backend", () => {
  test("the request target is never rewritten (%2e%2e, backslashes, .., a fragment)", async () => {
    const targets = ["/static/%2e%2e/account", "/static\\..\\account", "/a/../b", "/a/./b//c", "/x?y=%20&z=1#frag"];
    for (const target of targets) {
      const [m] = await recorded(() => raw(lbRec.port, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`));
      expect(m?.url).toBe(target);
    }
  });

  test("raw UTF-8 in the target is refused with 400 (as llhttp's strict mode does), never re-encoded", async () => {
    const got = await recorded(async () => expect((await raw(lbRec.port, "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n")).statuses).toEqual([400]));
    expect(got).toEqual([]);
  });

  test("fields arrive as sent, in order; Connection cannot remove Host; `_` framing names are dropped", async () => {
    const [m] = await recorded(() =>
      raw(lbRec.port, "GET / HTTP/1.1\r\nHost: example.com\r\nX-B: 2\r\nx-a:  one  \r\nConnection: keep-alive, Host, X-Gone\r\nX-Gone: 1\r\nTransfer_Encoding: chunked\r\nContent_Length: 5\r\nX_Custom: kept\r\n\r\n"),
    );
    const fields = fieldsOf(m as { headers: [string, string][] });
    expect(fields.slice(0, 3)).toEqual(["Host: example.com", "X-B: 2", "x-a: one"]);
    expect(fields).toContain("X_Custom: kept");
    expect(fields.join("\n")).not.toMatch(/X-Gone|Transfer_Encoding|Content_Length|^Connection/m);
  });

  test("an absolute-form target goes as its path, with its authority as Host", async () => {
    const [m] = await recorded(() => raw(lbRec.port, "GET http://evil.example/x?y HTTP/1.1\r\nHost: good.example\r\n\r\n"));
    expect(m?.url).toBe("/x?y");
    expect(fieldsOf(m as { headers: [string, string][] })).toContain("host: evil.example");
  });
});

describe("connections", () => {
  test("twenty pipelined requests in one write are answered in order", async () => {
    const payload = Array.from({ length: 20 }, (_, i) => `GET /n${i} HTTP/1.1\r\nHost: x\r\n${i === 19 ? "Connection: close\r\n" : ""}\r\n`).join("");
    const got = await recorded(async () => expect((await raw(lbRec.port, payload, { until: () => false, timeoutMs: 3000 })).statuses).toHaveLength(20));
    expect(got.map((m) => m.url)).toEqual(Array.from({ length: 20 }, (_, i) => `/n${i}`));
  });

  test("an HTTP/1.0 client asking for keep-alive keeps its connection (ab -k); one that does not is closed", async () => {
    const conn = await RawConn.open(lb.port);
    for (let i = 1; i <= 3; i++) {
      conn.write("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
      expect(await conn.wait((t) => responsesOf(t).filter((r) => r.complete).length === i, 2000)).toBe(true);
    }
    expect(conn.closedByPeer).toBe(false);
    expect(conn.text).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*content-length: 9\r\n[\s\S]*connection: keep-alive\r\n\r\nbackend a/i);
    conn.destroy();
    const once = await raw(lb.port, "GET / HTTP/1.0\r\n\r\n", { until: () => false, timeoutMs: 2000 });
    expect(once.statuses).toEqual([200]);
    expect(once.closedByPeer).toBe(true);
  });

  test("a request head that does not arrive within headerTimeout gets 408 and the connection closes", async () => {
    const conn = await RawConn.open(lb.port);
    conn.write("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    const started = performance.now();
    expect(await conn.wait(() => conn.closedByPeer, 3000)).toBe(true);
    expect(conn.text).toStartWith("HTTP/1.1 408 Request Timeout\r\n");
    expect(performance.now() - started).toBeLessThan(2000);
  });

  test("beyond maxConnections new connections get 503 and are closed; the others are still served", async () => {
    const idle = await Promise.all(Array.from({ length: 8 }, () => RawConn.open(lb.port)));
    await Bun.sleep(50);
    const extra = await raw(lb.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", { until: () => false, timeoutMs: 1000 });
    expect(extra.statuses).toEqual([503]);
    expect(extra.closedByPeer).toBe(true);
    idle[0]?.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(await idle[0]?.wait((t) => t.includes("backend a"), 2000)).toBe(true);
    for (const conn of idle) conn.destroy();
    await waitFor(async () => (await fetch(lb.url)).status === 200, 3000, "served again once connections closed");
  });
});

describe("bodies", () => {
  test("Content-Length is kept at any size (3 MB here; Bun.serve drops it above what it buffers)", async () => {
    const res = await fetch(`${lbRaw.url}/big?bytes=3000000`);
    expect(res.headers.get("content-length")).toBe("3000000");
    expect((await res.arrayBuffer()).byteLength).toBe(3_000_000);
  });

  test("a HEAD to a backend that answers chunked gains no Content-Length", async () => {
    const reply = await raw(lb.port, "HEAD /download?bytes=10 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", { until: () => false, timeoutMs: 1500 });
    expect(reply.text).toStartWith("HTTP/1.1 200 OK\r\n");
    expect(reply.text.toLowerCase()).not.toContain("content-length");
  });

  test("valid chunked trailers are accepted (RFC 9112 §7.1.2); the body arrives re-framed, trailers not forwarded", async () => {
    const [m] = await recorded(async () => {
      const reply = await raw(lbRec.port, "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n");
      expect(reply.statuses).toEqual([200]);
    });
    expect(Buffer.from(m?.body ?? []).toString()).toBe("hello world");
    expect(fieldsOf(m as { headers: [string, string][] })).toContain("transfer-encoding: chunked");
  });

  test("a chunked body that turns bad mid-stream is never completed upstream, and the client gets 400", async () => {
    const conn = await RawConn.open(lbRec.port);
    const before = recorder.arrived.length;
    conn.write("POST /bad HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    await waitFor(() => recorder.incomplete().some((m) => m.url === "/bad"), 2000, "the head and first chunk upstream");
    conn.write(`1;${"e".repeat(5000)}\r\nx\r\n0\r\n\r\n`); // an oversized chunk extension
    expect(await conn.wait((t) => t.includes("\r\n\r\n"), 2000)).toBe(true);
    expect(conn.text).toStartWith("HTTP/1.1 400 Bad Request\r\n");
    await Bun.sleep(100);
    expect(recorder.arrived.slice(before).some((m) => m.url === "/bad")).toBe(false);
    conn.destroy();
  });

  test("Expect: 100-continue gets a 100 from Fulcrum for HTTP/1.1, never for HTTP/1.0", async () => {
    const conn = await RawConn.open(lb.port);
    conn.write("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    expect(await conn.wait((t) => t.startsWith("HTTP/1.1 100 Continue\r\n\r\n"), 2000)).toBe(true);
    conn.write("hello");
    expect(await conn.wait((t) => t.endsWith("5\r\nhello\r\n0\r\n\r\n"), 2000)).toBe(true);
    conn.destroy();
    const old = await raw(lb.port, "POST /echo HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello", { until: () => false, timeoutMs: 1500 });
    expect(old.text).not.toContain("100 Continue");
    expect(old.statuses).toEqual([200]);
  });
});
