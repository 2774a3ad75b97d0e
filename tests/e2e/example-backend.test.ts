/**
 * examples/backend.ts as a real process on 127.0.0.1: with `--concurrency N`
 * it serves at most N `/work` requests at once and queues the rest in arrival
 * order (so latency grows with load, as bench/autoscale.ts --compare needs);
 * without it every `/work` runs at once, as before.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { cleanupAfterAll, freePort, ROOT, spawnTracked } from "../helpers/procs.ts";

cleanupAfterAll();

const BACKEND = join(ROOT, "examples/backend.ts");

async function start(extra: string[]): Promise<{ url: string; stop: () => Promise<number | null> }> {
  const port = freePort();
  const spawned = spawnTracked(["bun", BACKEND, "--port", String(port), ...extra]);
  await spawned.stdout.wait(/backend listening on port \d+/);
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      spawned.proc.kill("SIGTERM");
      return spawned.proc.exited;
    },
  };
}

/** `n` concurrent GET /work?ms=`ms`, sent in order; each answer with its latency. */
async function burst(url: string, n: number, ms: number) {
  const began = performance.now();
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const res = await fetch(`${url}/work?ms=${ms}&i=${i}`);
      const body = (await res.json()) as { workedMs: number; waitedMs?: number };
      return { status: res.status, elapsed: performance.now() - began, ...body };
    }),
  );
}

test("--concurrency 2: 6 concurrent /work?ms=200 take about three rounds; /health does not wait", async () => {
  const backend = await start(["--concurrency", "2"]);
  await fetch(`${backend.url}/work?ms=1`); // warm the connection path
  const pending = burst(backend.url, 6, 200);
  await Bun.sleep(50);
  const health = performance.now();
  expect((await fetch(`${backend.url}/health`)).status).toBe(200);
  expect(performance.now() - health).toBeLessThan(150); // answered while /work is queued
  const results = await pending;
  expect(results.every((r) => r.status === 200 && r.workedMs === 200)).toBe(true);
  const elapsed = results.map((r) => r.elapsed).sort((a, b) => a - b);
  expect(elapsed[0]!).toBeGreaterThanOrEqual(190);
  expect(elapsed[0]!).toBeLessThan(400); // the first two ran at once
  expect(elapsed[5]!).toBeGreaterThanOrEqual(550); // the last two waited two rounds
  const waited = results.map((r) => r.waitedMs ?? -1).sort((a, b) => a - b);
  expect(waited.filter((w) => w < 100)).toHaveLength(2);
  expect(waited[5]!).toBeGreaterThanOrEqual(350);
  expect(await backend.stop()).toBe(0);
});

test("CONCURRENCY in the environment works like the flag; unset, every /work runs at once", async () => {
  const port = freePort();
  const limited = spawnTracked(["bun", BACKEND, "--port", String(port)], { env: { CONCURRENCY: "1" } });
  await limited.stdout.wait(/backend listening on port \d+ \(concurrency 1\)/);
  const serial = (await burst(`http://127.0.0.1:${port}`, 3, 150)).map((r) => r.elapsed).sort((a, b) => a - b);
  expect(serial[2]!).toBeGreaterThanOrEqual(400);
  limited.proc.kill("SIGTERM");
  expect(await limited.proc.exited).toBe(0);

  const free = await start([]);
  const results = await burst(free.url, 6, 200);
  expect(results.every((r) => r.status === 200 && r.waitedMs === undefined)).toBe(true);
  expect(Math.max(...results.map((r) => r.elapsed))).toBeLessThan(500);
  expect(await free.stop()).toBe(0);
});

test("a bad --concurrency exits 1 with a message", async () => {
  const bad = spawnTracked(["bun", BACKEND, "--port", String(freePort()), "--concurrency", "two"]);
  expect(await bad.proc.exited).toBe(1);
  await bad.stderr.wait(/invalid concurrency "two"/);
});
