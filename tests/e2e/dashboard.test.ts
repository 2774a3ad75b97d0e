/**
 * /lb-dashboard and its feed /lb-events, without a browser (the browser test
 * is dashboard-browser.test.ts): the page is one self-contained document, the
 * feed follows the traffic, a cluster streams the whole host from every
 * process, and shutdown does not wait for open streams.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { cleanupAfterAll, startBackend, startFulcrum, tempDir, waitFor, type Running } from "../helpers/procs.ts";
import { openEvents, type SseStream } from "../helpers/sse.ts";

cleanupAfterAll();

interface Point {
  t: number;
  rps: number;
  p99: number | null;
  healthy: number;
  total: number;
}
interface Status {
  instances: { id: string; totalRequests: number; latency: { counts: number[]; sumMs: number } }[];
  workers?: { index: number; pid: number; totalRequests: number }[];
}
interface Hello {
  interval: number;
  capacity: number;
  points: Point[];
  status: Status | null;
  pid: number;
}

let a: Running;
let b: Running;
beforeAll(async () => {
  [a, b] = await Promise.all([startBackend("a"), startBackend("b")]);
});

async function configFile(extra: Record<string, unknown>): Promise<string> {
  const file = join(tempDir(), "lb.json");
  await Bun.write(file, JSON.stringify({ listen: { port: 0, hostname: "127.0.0.1" }, backends: [a.url, b.url], health: { interval: 60_000 }, log: { access: false }, ...extra }));
  return file;
}

/** Ticks for `ms`: the points and the last status seen. */
async function collect(stream: SseStream, ms: number): Promise<{ points: Point[]; status: Status | null }> {
  const points: Point[] = [];
  let status: Status | null = null;
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    const tick = (await stream.next("tick", 3000)).data as { point: Point; status: Status | null };
    points.push(tick.point);
    status = tick.status ?? status;
  }
  return { points, status };
}

const requestsIn = (points: Point[]) => points.reduce((n, p) => n + p.rps, 0);

/** `n` requests to `path`, 10 at a time, each on a fresh connection (so a cluster spreads them). */
async function send(url: string, path: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += 10) {
    await Promise.all(Array.from({ length: Math.min(10, n - i) }, () => fetch(`${url}${path}`, { headers: { connection: "close" } }).then((r) => r.text())));
  }
}

describe("/lb-dashboard", () => {
  test("is one self-contained page: its script and style inline, nothing loaded from elsewhere", async () => {
    const lb = await startFulcrum(["--port", "0", "--backend", a.url]);
    const res = await fetch(`${lb.url}/lb-dashboard`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(res.headers.get("content-security-policy")).toContain("connect-src 'self'");
    const html = await res.text();
    expect(html).toStartWith("<!doctype html>");
    expect(html).toContain("new EventSource(");
    expect(html).not.toContain("/* page.js */"); // the script slot was filled
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+stylesheet|@import|url\(http/i);
    // Every link stays on this origin (the page's own endpoints) or is a data: URL.
    for (const [, target] of html.matchAll(/(?:href|src)="([^"]*)"/g)) expect(target).toMatch(/^(lb-[a-z]+|data:.*)$/);

    expect((await fetch(`${lb.url}/lb-dashboard`, { method: "HEAD" })).status).toBe(200);
    const post = await fetch(`${lb.url}/lb-dashboard`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    expect((await fetch(`${lb.url}/lb-events`, { method: "POST" })).status).toBe(405);
    await lb.stop();
  });

  test("with admin.port set, the page and its feed are served there, and the listen port proxies the paths", async () => {
    const lb = await startFulcrum(["--config", await configFile({ admin: { port: 0 } })]);
    const adminPort = Number((await lb.stdout.wait(/Status and admin endpoints on port (\d+)/))[1]);
    const admin = `http://127.0.0.1:${adminPort}`;
    expect(await (await fetch(`${admin}/lb-dashboard`)).text()).toContain("<title>Fulcrum dashboard</title>");
    const stream = await openEvents(`${admin}/lb-events`);
    expect(((await stream.next("hello")).data as Hello).status?.instances).toHaveLength(2);
    stream.close();
    expect(await (await fetch(`${lb.url}/lb-dashboard`)).text()).toMatch(/^not found: \/lb-dashboard$/); // the fixture backend's own 404
    expect(await (await fetch(`${lb.url}/lb-events`)).text()).toMatch(/^not found: \/lb-events$/);
    await lb.stop();
  });
});

describe("/lb-events", () => {
  test("sends the last minutes on connect, then a point a second that follows the traffic", async () => {
    const lb = await startFulcrum(["--config", await configFile({})]);
    await Bun.sleep(1500); // a point or two of backlog
    const stream = await openEvents(`${lb.url}/lb-events`);
    const hello = (await stream.next("hello")).data as Hello;
    expect(hello.interval).toBe(1000);
    expect(hello.capacity).toBe(300);
    expect(hello.points.length).toBeGreaterThanOrEqual(1);
    expect(hello.points[0]).toMatchObject({ rps: 0, p99: null, healthy: 2, total: 2 });
    expect(hello.status?.instances.map((i) => i.id)).toEqual(["b1", "b2"]);

    // ~31 ms each: the (25 ms, 50 ms] bucket, so p99 is estimated inside it.
    await send(lb.url, "/slow?ms=30", 60);
    const { points, status } = await collect(stream, 2500);
    expect(requestsIn(points)).toBeGreaterThanOrEqual(54); // rates over slightly more than a second each
    const p99s = points.map((p) => p.p99).filter((p) => p !== null);
    expect(p99s.length).toBeGreaterThan(0);
    for (const p99 of p99s) expect(p99).toBeGreaterThan(25);
    for (const p99 of p99s) expect(p99).toBeLessThanOrEqual(50);
    expect(points.at(-1)?.rps).toBe(0); // the traffic stopped
    // The status rides along: every response counted once in its backend's histogram.
    expect(status?.instances.reduce((n, i) => n + i.totalRequests, 0)).toBe(60);
    expect(status?.instances.reduce((n, i) => n + i.latency.counts.reduce((x, y) => x + y, 0), 0)).toBe(60);
    stream.close();
    await lb.stop();
  });

  test("SIGTERM ends open streams with a bye and exits at once instead of waiting out the drain", async () => {
    const lb = await startFulcrum(["--config", await configFile({})]);
    const streams = await Promise.all([openEvents(`${lb.url}/lb-events`), openEvents(`${lb.url}/lb-events`)]);
    for (const s of streams) await s.next("hello");
    const started = performance.now();
    lb.proc.kill("SIGTERM");
    for (const s of streams) {
      expect(((await s.next("bye")).data as { reason: string }).reason).toBe("the balancer is shutting down");
      await s.ended();
    }
    expect(await lb.proc.exited).toBe(0);
    expect(performance.now() - started).toBeLessThan(3000); // the drain deadline is 10 s
    expect(lb.stdout.text).not.toContain("drain deadline passed");
  });

  test("in a cluster, every process streams the whole host's numbers", async () => {
    const lb = await startFulcrum(["--config", await configFile({ cluster: { workers: 2 }, health: { interval: 300 } })]);
    await lb.stdout.wait(/worker 1 serving on port/);
    const primaryPid = lb.proc.pid;
    // The kernel spreads connections over the processes: open streams until both have served one.
    const byPid = new Map<number, SseStream>();
    for (let i = 0; i < 40 && byPid.size < 2; i++) {
      const stream = await openEvents(`${lb.url}/lb-events`, { connection: "close" });
      const hello = (await stream.next("hello")).data as Hello;
      if (byPid.has(hello.pid)) stream.close();
      else byPid.set(hello.pid, stream);
    }
    expect(byPid.size).toBe(2);
    expect(byPid.has(primaryPid)).toBe(true);

    await send(lb.url, "/slow?ms=30", 80);
    await Bun.sleep(300); // the workers' counters reach the primary every 100 ms
    const seen = await Promise.all([...byPid].map(async ([pid, stream]) => ({ pid, ...(await collect(stream, 2500)) })));
    for (const { pid, points, status } of seen) {
      const where = pid === primaryPid ? "the primary" : "the worker";
      expect(requestsIn(points), where).toBeGreaterThanOrEqual(72);
      expect(points.some((p) => p.p99 !== null && p.p99 > 25 && p.p99 <= 50), where).toBe(true);
      expect(status?.workers?.map((w) => w.index), where).toEqual([0, 1]);
      for (const w of status?.workers ?? []) expect(w.totalRequests, `${where}: process ${w.index}`).toBeGreaterThan(0);
      // Host-wide histograms: each response counted once, whichever process proxied it.
      expect(status?.instances.reduce((n, i) => n + i.latency.counts.reduce((x, y) => x + y, 0), 0), where).toBe(80);
    }

    const started = performance.now();
    expect(await lb.stop()).toBe(0);
    expect(performance.now() - started).toBeLessThan(5000);
    await waitFor(async () => {
      for (const stream of byPid.values()) await stream.ended(100);
      return true;
    }, 3000, "both streams to end");
  });
});
