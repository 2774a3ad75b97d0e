/**
 * Everything at once (issue 12's chaos proof): 16 clients loop idempotent GETs
 * through Fulcrum while a static backend is SIGKILLed every 2 s and started
 * again 1 s later (in turn), two SIGHUP reloads take a backend out and put it
 * back, an admin call scales the managed instances down, and one backend
 * answers 500 for three seconds, so its circuit opens. No request may fail
 * except the sick backend's own 500s before its circuit opens and during its
 * trials (a 500 is an answer, passed through, never retried); nothing may
 * leak: no request in flight or queued, no client connection left, no
 * instance process alive after the stop.
 *
 * `bun bench/chaos-proof.ts --duration 30` runs this same test for longer
 * (CHAOS_PROOF_MS; the disruptions keep their places in the run, scaled).
 */
import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { runChaos } from "../helpers/chaos.ts";
import { cleanupAfterAll, randomBasePort, restartableBackend, startBackend, startFulcrum, tempDir } from "../helpers/procs.ts";

cleanupAfterAll();

const FIXTURE = resolve(import.meta.dir, "../fixtures/backend.ts");
const TOKEN = "chaos-token";
const SICK_500 = "500 forced 500";
/** The run's length; 9 s in the suite. The disruptions' times below are for 9 s and scale with it. */
const DURATION_MS = Number(process.env.CHAOS_PROOF_MS ?? 9000);
const at = (ms: number) => Math.round((ms * DURATION_MS) / 9000);

interface Status {
  traffic: { retries: number; queued: number; connections: number | null };
  instances: { url: string; pid: number | null; managed: boolean; state: string; activeRequests: number; circuit: string; outcomes: { ejections: number } }[];
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test("kills, reloads, an admin scale-down and a breaker at once: no failed request, nothing leaked", async () => {
  const restarting = await Promise.all([restartableBackend("a"), restartableBackend("b"), restartableBackend("c")]);
  const sick = await startBackend("sick");
  const urls = [...restarting.map((b) => b.url), sick.url];
  const file = join(tempDir(), "lb.json");
  const basePort = randomBasePort();
  const config = (backends: readonly string[]) => ({
    listen: { port: 0, hostname: "127.0.0.1" },
    backends,
    instances: { command: ["bun", FIXTURE, "--name", "managed"], min: 1, max: 3, basePort, startTimeout: 10_000, stopTimeout: 3000 },
    // The autoscaler stays out of the way: only the admin call changes the count.
    scaling: { scaleUpThreshold: 1000, scaleDownThreshold: 0.001, idleTimeout: 600_000 },
    strategy: "round-robin",
    health: { interval: 1000, eject: { consecutiveFailures: 3, baseTime: 1000, trials: 3 } },
    admin: { token: TOKEN },
    log: { access: false },
  });
  writeFileSync(file, JSON.stringify(config(urls)));
  const lb = await startFulcrum(["--config", file]);
  const status = async () => (await (await fetch(`${lb.url}/lb-status`)).json()) as Status;
  const admin = (path: string, body: unknown) =>
    fetch(`${lb.url}/lb-admin/${path}`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(body) });

  // Two managed instances, both taking traffic, before the chaos starts.
  expect((await admin("scale", { desired: 2 })).status).toBe(200);
  for (let i = 0; i < 100; i++) {
    if ((await status()).instances.filter((b) => b.managed && b.state === "healthy").length === 2) break;
    await Bun.sleep(100);
  }
  const managedBefore = (await status()).instances.filter((b) => b.managed).map((b) => b.pid!);
  expect(managedBefore).toHaveLength(2);

  const reload = (list: readonly string[], expected: RegExp) => async () => {
    writeFileSync(file, JSON.stringify(config(list)));
    lb.proc.kill("SIGHUP");
    await lb.stdout.wait(expected, 5000);
  };
  let sickEjections = 0;
  const result = await runChaos({
    url: lb.url,
    path: "/slow?ms=5",
    backends: restarting,
    clients: 16,
    durationMs: DURATION_MS,
    killEveryMs: 2000,
    downMs: 1000,
    events: [
      { atMs: at(1500), name: "sick backend answers 500", run: () => fetch(`${sick.url}/control/answer?status=500`) },
      { atMs: at(3500), name: "reload without c", run: reload(urls.filter((u) => u !== restarting[2]!.url), /config reloaded[^\n]*removing/) },
      { atMs: at(4000), name: "admin scale down to 1", run: () => admin("scale", { desired: 1 }) },
      {
        atMs: at(4500),
        name: "sick backend well again",
        run: async () => {
          sickEjections = (await status()).instances.find((b) => b.url === sick.url)!.outcomes.ejections;
          await fetch(`${sick.url}/control/answer?status=0`);
        },
      },
      { atMs: at(6500), name: "reload with c back", run: reload(urls, /config reloaded[^\n]*added/) },
    ],
  });
  const { [SICK_500]: sick500 = 0, ...otherReasons } = result.reasons;
  const after = await status();
  console.log(
    `chaos proof: sent ${result.sent}, ok ${result.ok}, failed ${result.failed} (sick backend's 500s ${sick500}), ` +
      `failed while all down ${result.failedAllDown}, retried ${after.traffic.retries}, kills ${result.kills}, sick circuit opened ${sickEjections}×\n  ${result.timeline.join("\n  ")}`,
  );

  expect(result.timeline.filter((line) => /reload|scale down/.test(line))).toHaveLength(3);
  expect(result.kills).toBeGreaterThanOrEqual(3);
  expect(result.ok).toBeGreaterThan(1000);
  // Every failure is one of the sick backend's own answers: none from Fulcrum.
  expect({ failed: result.failed - sick500, reasons: otherReasons }).toEqual({ failed: 0, reasons: {} });
  // The breaker opened and kept the sick backend's share small: without it, a sixth of three seconds' traffic.
  expect(sickEjections).toBeGreaterThanOrEqual(1);
  expect(sick500).toBeLessThan(at(40)); // up to 3 failed trials per probe that reopens it to half-open, and the first 3
  expect(after.traffic.retries).toBeGreaterThan(0);

  // Nothing leaked: no request in flight or queued, no more client connections than the clients' keep-alive
  // pool (16, and this status request), the scaled-down instance gone.
  await Bun.sleep(300);
  const settled = await status();
  expect(settled.instances.reduce((n, b) => n + b.activeRequests, 0)).toBe(0);
  expect(settled.traffic.queued).toBe(0);
  if (settled.traffic.connections !== null) expect(settled.traffic.connections).toBeLessThanOrEqual(17);
  const managedAfter = settled.instances.filter((b) => b.managed).map((b) => b.pid!);
  expect(managedAfter).toHaveLength(1);
  expect(managedBefore.filter(alive)).toEqual(managedAfter);
  expect(await lb.stop()).toBe(0);
  expect(managedAfter.filter(alive)).toEqual([]);
}, DURATION_MS + 50_000);
