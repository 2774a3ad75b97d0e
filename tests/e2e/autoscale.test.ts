/**
 * Autoscaling with real instances of examples/backend.ts and real load: scale
 * up under load, back down to min after it, no failed request during either;
 * scale to zero and a cold start that starts one instance for many requests.
 * Intervals are short so the test is quick; the decisions are the same.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { cleanupAfterAll, randomBasePort, ROOT, startFulcrum, tempDir, waitFor } from "../helpers/procs.ts";
import { runLoad } from "../helpers/load.ts";

cleanupAfterAll();

interface Status {
  total: number;
  scaling: { min: number; max: number; desired: number; load: number; lastAction: { direction: string; from: number; to: number; reason: string; at: string } | null };
  instances: { id: string; pid: number | null; port: number; state: string; managed: boolean }[];
}
const status = async (url: string) => (await (await fetch(`${url}/lb-status`)).json()) as Status;

function config(instances: Record<string, unknown>, scaling: Record<string, unknown> = {}): string {
  const dir = tempDir({
    "lb.json": JSON.stringify({
      listen: { port: 0, hostname: "127.0.0.1" },
      instances: { location: join(ROOT, "examples/backend.ts"), basePort: randomBasePort(), slowStart: 300, ...instances },
      health: { interval: 500 },
      scaling: { checkInterval: 250, stableWindow: 2000, panicWindow: 500, idleTimeout: 1000, cooldown: 500, scaleUpThreshold: 3, scaleDownThreshold: 0.5, ...scaling },
      log: { access: false },
    }),
  });
  return join(dir, "lb.json");
}

describe("autoscaling", () => {
  test("30 clients on /work?ms=200 scale it up above min, then it scales back down to min; no request fails", async () => {
    const lb = await startFulcrum(["--config", config({ min: 1, max: 5 })]);
    let peak = 0;
    const watching = setInterval(async () => {
      peak = Math.max(peak, (await status(lb.url)).scaling.desired);
    }, 100);

    const heavy = await runLoad(`${lb.url}/work?ms=200`, 30, 6000);
    expect(heavy.failures).toEqual([]);
    expect(heavy.ok).toBeGreaterThan(200);
    expect(peak).toBeGreaterThan(1);
    expect(lb.stdout.text).toMatch(/SCALE: UP 1 -> \d \(avg load \d+\.\d\d > 3(, panic)?\)/);

    // Light traffic (about 0.4 requests in flight) keeps flowing while it scales down: draining must not fail any of it.
    const stopLight = new AbortController();
    const light = runLoad(`${lb.url}/work?ms=20`, 2, 30_000, stopLight.signal, 80);
    await waitFor(async () => (await status(lb.url)).scaling.desired === 1 && (await status(lb.url)).total === 1, 20_000, "scale down to min");
    clearInterval(watching);
    stopLight.abort();
    const during = await light;
    expect(during.failures).toEqual([]);
    expect(lb.stdout.text).toMatch(/SCALE: DOWN \d -> \d \(load \d\.\d\d < 0\.5 per instance for \d+s\)/);

    const s = await status(lb.url);
    expect(s.scaling.lastAction).toMatchObject({ direction: "down", to: 1 });
    expect(lb.stdout.text).toMatch(/instance i\d+ stopped/);
    expect(await lb.stop()).toBe(0);
  }, 60_000);

  test("scale to zero: idle stops every instance; requests during a cold start start one instance, then are answered", async () => {
    const lb = await startFulcrum(["--config", config({ min: 0, max: 3 })]);
    expect((await status(lb.url)).total).toBe(0);

    const answers = await Promise.all(Array.from({ length: 10 }, () => fetch(lb.url).then((r) => r.status)));
    expect(answers).toEqual(Array(10).fill(200));
    expect(lb.stdout.text.match(/instance i\d+ starting on port/g)).toHaveLength(1);
    expect(lb.stdout.text).toContain("SCALE: UP 0 -> 1 (request while scaled to zero)");

    await waitFor(async () => (await status(lb.url)).total === 0, 15_000, "scale back to zero");
    expect(lb.stdout.text).toMatch(/SCALE: DOWN 1 -> 0/);
    // And once more from zero.
    expect((await fetch(lb.url)).status).toBe(200);
    expect(await lb.stop()).toBe(0);
  }, 40_000);

  test("a WebSocket upgrade while scaled to zero waits for the cold start and connects", async () => {
    const lb = await startFulcrum(["--config", config({ min: 0, max: 1, location: join(ROOT, "tests/fixtures/backend.ts") })]);
    const ws = new WebSocket(`ws://127.0.0.1:${lb.port}/ws`);
    const greeting = await new Promise<string>((resolve, reject) => {
      ws.onmessage = (e) => resolve(String(e.data));
      ws.onerror = () => reject(new Error("websocket failed"));
    });
    expect(greeting).toBe("hello from x");
    ws.close();
    expect(await lb.stop()).toBe(0);
  });

  test("a cold start that cannot finish within startTimeout answers 503", async () => {
    const dir = tempDir({ "mute.ts": "setInterval(() => {}, 1000); // never listens" });
    const lb = await startFulcrum(["--config", config({ min: 0, max: 1, location: join(dir, "mute.ts"), startTimeout: 800, stopTimeout: 300 })]);
    const started = performance.now();
    const res = await fetch(lb.url);
    expect(res.status).toBe(503);
    expect(performance.now() - started).toBeGreaterThanOrEqual(700);
    await lb.stop(); // SIGTERM: Fulcrum stops its instances too
  });
});

describe("slow start", () => {
  test("a new instance gets a growing share of traffic, then its full share", async () => {
    const file = config({ min: 1, max: 2, slowStart: 3000 }, { checkInterval: 60_000 });
    const raw = JSON.parse(await Bun.file(file).text());
    await Bun.write(file, JSON.stringify({ ...raw, admin: { token: "t0ken" } }));
    const lb = await startFulcrum(["--config", file]);
    await Bun.sleep(3000); // the first instance is past its own slow start

    const scaled = await fetch(`${lb.url}/lb-admin/scale`, { method: "POST", headers: { authorization: "Bearer t0ken" }, body: JSON.stringify({ desired: 2 }) });
    expect(scaled.status).toBe(200);
    const fresh = await waitFor(async () => (await status(lb.url)).instances.find((i) => i.id !== "i1" && i.state === "healthy"), 10_000, "second instance ready");
    const freshPort = fresh.port;

    const share = async (n: number) => {
      let hits = 0;
      for (let i = 0; i < n; i++) if ((await (await fetch(lb.url)).text()).includes(`port ${freshPort} `)) hits++;
      return hits / n;
    };
    const warming = await share(200); // sequential requests: without slow start this would be 50%
    await Bun.sleep(3000);
    const warm = await share(200);
    expect(warming).toBeGreaterThan(0);
    expect(warming).toBeLessThan(0.4);
    expect(warm).toBeGreaterThan(0.4);
    expect(await lb.stop()).toBe(0);
  });
});
