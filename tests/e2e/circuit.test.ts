/**
 * Passive health as one circuit per backend, end to end: a backend that
 * answers 500 to half its requests (no run of three in a row needed) is
 * ejected on the error rate, its traffic moves to the other one, and
 * /lb-status, /lb-metrics and the log say so; once open time is up it turns
 * half-open and gets at most `trials` requests at once; `trials` successes
 * close it; a failed trial opens it again for longer.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { cleanupAfterAll, startBackend, startFulcrum, tempDir, type Running } from "../helpers/procs.ts";

cleanupAfterAll();

let sick: Running;
let well: Running;
let lb: Running;

beforeAll(async () => {
  [sick, well] = await Promise.all([startBackend("sick"), startBackend("well")]);
  const file = join(tempDir(), "lb.json");
  await Bun.write(
    file,
    JSON.stringify({
      listen: { port: 0, hostname: "127.0.0.1" },
      backends: [sick.url, well.url],
      strategy: "round-robin",
      // Probes once at start, then not within the test: the circuit alone decides.
      health: { interval: 600_000, eject: { consecutiveFailures: 0, errorRate: 0.5, minRequests: 10, window: 60_000, baseTime: 1000, trials: 2 } },
      proxy: { retries: 0 },
      log: { access: false },
    }),
  );
  lb = await startFulcrum(["--config", file]);
});

afterAll(async () => {
  await lb?.stop();
});

interface Instance {
  url: string;
  circuit: string;
  healthy: boolean;
  activeRequests: number;
  outcomes: { ejections: number };
}
const instance = async (url: string) => {
  const body = (await (await fetch(`${lb.url}/lb-status`)).json()) as { instances: Instance[] };
  return body.instances.find((i) => i.url === url)!;
};
const answer = (backend: Running, status: number) => fetch(`${backend.url}/control/answer?status=${status}`);
/** `n` sequential GETs; the statuses in order. */
async function get(n: number, path = "/"): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) statuses.push((await fetch(`${lb.url}${path}`)).status);
  return statuses;
}
const log = () => lb.stdout.text;

describe("circuit breaker", () => {
  test("an error rate of 50% opens the circuit: no more traffic there, and status, metrics and log say so", async () => {
    await answer(sick, 500);
    // Round robin: every other request goes to the sick one until ten of them (all 500) open its circuit.
    const statuses = await get(60);
    const failed = statuses.filter((s) => s === 500).length;
    expect(failed).toBe(10);
    expect(statuses.slice(-30).every((s) => s === 200)).toBe(true);
    const status = await instance(sick.url);
    expect(status).toMatchObject({ circuit: "open", healthy: false, outcomes: { ejections: 1 } });
    expect((await instance(well.url)).circuit).toBe("closed");
    const metrics = await (await fetch(`${lb.url}/lb-metrics`)).text();
    expect(metrics).toContain(`fulcrum_backend_circuit{backend="${sick.url}",state="open"} 1`);
    expect(metrics).toContain(`fulcrum_backend_circuit{backend="${sick.url}",state="closed"} 0`);
    expect(metrics).toContain(`fulcrum_backend_circuit{backend="${well.url}",state="closed"} 1`);
    expect(log()).toContain(`${sick.url} ejected after error rate (circuit open for 1.0 s)`);
  }, 20_000);

  test("after baseTime it is half-open: at most `trials` requests at once there, and they close it", async () => {
    await answer(sick, 0);
    await lb.stdout.wait(new RegExp(`${sick.url} is half-open after ejection`), 5000);
    expect((await instance(sick.url)).circuit).toBe("half-open");
    // Eight slow requests at once: the half-open backend takes two (its trial slots), the other the rest.
    const requests = Array.from({ length: 8 }, () => fetch(`${lb.url}/slow?ms=400`).then((r) => r.status));
    let peak = 0;
    for (let i = 0; i < 6; i++) {
      await Bun.sleep(50);
      peak = Math.max(peak, (await instance(sick.url)).activeRequests);
    }
    expect(await Promise.all(requests)).toEqual(new Array(8).fill(200));
    expect(peak).toBe(2);
    expect((await instance(sick.url)).circuit).toBe("closed");
    expect(log()).toContain(`${sick.url} is back in rotation: its trial requests succeeded (circuit closed)`);
    // Closed again: round robin shares the traffic once more.
    expect(await get(4)).toEqual([200, 200, 200, 200]);
  }, 20_000);

  test("a failed trial opens it again, for baseTime × times opened", async () => {
    await answer(sick, 500);
    const statuses = await get(40);
    // The window started over when the circuit closed and has held two successes since (the four GETs above):
    // eight failures make 8 of 10, over the rate.
    expect(statuses.filter((s) => s === 500).length).toBe(8);
    expect(log()).toContain(`${sick.url} ejected after error rate (circuit open for 2.0 s)`);
    await lb.stdout.wait(new RegExp(`${sick.url} is half-open after ejection[^\\n]*\\n[\\s\\S]*${sick.url} is half-open after ejection`), 5000);
    await get(4); // one of these is a trial, and fails
    expect(log()).toContain(`${sick.url} ejected after a trial request failed (circuit open for 3.0 s)`);
    expect(await instance(sick.url)).toMatchObject({ circuit: "open", outcomes: { ejections: 3 } });
    await answer(sick, 0);
  }, 20_000);
});
