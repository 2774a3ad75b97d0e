/**
 * `GET /lb-metrics` as Prometheus scrapes it: text format, counters that follow
 * real traffic, on the admin port only when `admin.port` is set.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { cleanupAfterAll, startBackend, startFulcrum, tempDir, waitFor, type Running } from "../helpers/procs.ts";
import { readPrometheusText } from "../helpers/prometheus-text.ts";
import { raw } from "../helpers/raw-http.ts";

cleanupAfterAll();

let a: Running;
let b: Running;
beforeAll(async () => {
  [a, b] = await Promise.all([startBackend("a"), startBackend("b")]);
});

const sumOf = (text: string, name: string) =>
  [...text.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, "gm"))].reduce((n, m) => n + Number(m[1]), 0);

describe("/lb-metrics", () => {
  test("counts proxied requests and failures per backend, in Prometheus text format", async () => {
    const lb = await startFulcrum(["--port", "0", "--backend", a.url, "--backend", b.url]);
    for (let i = 0; i < 10; i++) await (await fetch(`${lb.url}/`)).text();
    for (let i = 0; i < 2; i++) await (await fetch(`${lb.url}/status/500`)).text();

    const res = await fetch(`${lb.url}/lb-metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    expect(sumOf(text, "fulcrum_backend_requests_total")).toBe(12);
    expect(sumOf(text, "fulcrum_backend_failed_requests_total")).toBe(2);
    expect(text).toContain(`fulcrum_backend_healthy{id="b1",url="${a.url}",managed="false"} 1`);
    expect(text).toMatch(/^fulcrum_backends_healthy 2$/m);
    expect(text).toMatch(/^# TYPE fulcrum_backend_requests_total counter$/m);

    expect((await fetch(`${lb.url}/lb-metrics`, { method: "HEAD" })).status).toBe(200);
    const post = await fetch(`${lb.url}/lb-metrics`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    await lb.stop();
  });

  test("outcomes, histograms, retries and bytes follow traffic; the text passes promtool check metrics", async () => {
    const dead = await startBackend("dead");
    const lb = await startFulcrum(["--config", await configFile({ backends: [a.url, dead.url], strategy: "round-robin" })]);
    await dead.stop("SIGKILL");
    for (let i = 0; i < 8; i++) expect((await fetch(`${lb.url}/`)).status).toBe(200); // half go to dead first and are retried
    await (await fetch(`${lb.url}/status/503`)).text();
    expect((await raw(lb.port, "BREW / HTTP/1.1\r\nHost: x\r\n\r\n")).statuses).toEqual([501]);
    const text = await (await fetch(`${lb.url}/lb-metrics`)).text();
    const { problems, samples } = readPrometheusText(text);
    expect(problems).toEqual([]);
    const value = (name: string, labels: Record<string, string>) => samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    expect(value("fulcrum_requests_total", { backend: a.url, code: "2xx" })).toBe(8);
    expect(value("fulcrum_requests_total", { backend: a.url, code: "5xx" })).toBe(1);
    expect(value("fulcrum_requests_total", { backend: dead.url, code: "upstream_error" })).toBeGreaterThanOrEqual(3);
    expect(value("fulcrum_requests_total", { backend: "none", code: "refused" })).toBe(1);
    expect(value("fulcrum_retries_total", {})).toBe(value("fulcrum_requests_total", { backend: dead.url, code: "upstream_error" }));
    expect(value("fulcrum_backend_response_seconds_count", { backend: a.url })).toBe(9);
    expect(value("fulcrum_backend_response_seconds_bucket", { backend: a.url, le: "+Inf" })).toBe(9);
    expect(value("fulcrum_sent_bytes_total", {})).toBeGreaterThan(9 * 100);
    expect(value("fulcrum_client_connections", {})).toBeGreaterThanOrEqual(1);
    if (Bun.which("promtool")) {
      const check = Bun.spawnSync(["promtool", "check", "metrics"], { stdin: Buffer.from(text), stderr: "pipe", stdout: "pipe" });
      expect({ code: check.exitCode, lint: check.stderr.toString() + check.stdout.toString() }).toEqual({ code: 0, lint: "" });
    } else console.log("promtool not installed (Debian's prometheus package): skipped promtool check metrics");
    await lb.stop();
  });

  test("a backend that goes down shows as 0 in fulcrum_backend_healthy", async () => {
    const doomed = await startBackend("doomed");
    const lb = await startFulcrum(["--config", await configFile({ backends: [a.url, doomed.url], health: { interval: 200, fall: 1 } })]);
    await doomed.stop("SIGKILL");
    await waitFor(async () => (await (await fetch(`${lb.url}/lb-metrics`)).text()).includes(`fulcrum_backend_healthy{id="b2",url="${doomed.url}",managed="false"} 0`), 5000, "b2 unhealthy in metrics");
    const text = await (await fetch(`${lb.url}/lb-metrics`)).text();
    expect(text).toContain(`fulcrum_backend_state{id="b2",url="${doomed.url}",state="unhealthy"} 1`);
    expect(text).toMatch(/^fulcrum_backends_healthy 1$/m);
    await lb.stop();
  });

  test("with admin.port set, metrics are served there and the listen port proxies the path", async () => {
    const lb = await startFulcrum(["--config", await configFile({ backends: [a.url], admin: { port: 0 } })]);
    const adminPort = Number((await lb.stdout.wait(/Status and admin endpoints on port (\d+)/))[1]);
    const own = await fetch(`http://127.0.0.1:${adminPort}/lb-metrics`);
    expect(await own.text()).toContain("fulcrum_uptime_seconds");
    const proxied = await fetch(`${lb.url}/lb-metrics`);
    expect(await proxied.text()).toBe("not found: /lb-metrics"); // the fixture backend's own 404
    await lb.stop();
  });
});

async function configFile(extra: Record<string, unknown>): Promise<string> {
  const file = join(tempDir(), "lb.json");
  await Bun.write(file, JSON.stringify({ listen: { port: 0, hostname: "127.0.0.1" }, health: { interval: 60_000 }, ...extra }));
  return file;
}
