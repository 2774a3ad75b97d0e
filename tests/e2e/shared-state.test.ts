/**
 * Several Fulcrums, one pool (cluster.redis), with a real redis-server and
 * real processes on 127.0.0.1: an admin change on one node shows on the other
 * within a second, a backend one node sees die is kept out on the other before
 * its own probes notice, nodes list each other and a killed one disappears
 * after its TTL, and Redis killed mid-traffic and restarted costs no request,
 * says so once per node and once again when it is back, refusing admin
 * changes meanwhile. The Redis requires a password (in the URL); the admin
 * token never reaches it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { cleanupAfterAll, startBackend, startFulcrum, startRedis, tempDir, waitFor, type Running } from "../helpers/procs.ts";

cleanupAfterAll();

const TOKEN = "shared-token";
let redis: Awaited<ReturnType<typeof startRedis>>;
let a: Running;
let b: Running;
let c: Running;
let one: Running;
let two: Running;

interface Status {
  instances: { id: string; url: string; state: string; healthy: boolean }[];
  nodes?: { id: string; port: number }[];
}
const status = async (lb: Running) => (await (await fetch(`${lb.url}/lb-status`)).json()) as Status;
const admin = (lb: Running, method: string, path: string, body?: unknown) =>
  fetch(`${lb.url}/lb-admin/${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` }, body: body === undefined ? undefined : JSON.stringify(body) });
const urls = async (lb: Running) => (await status(lb)).instances.map((i) => i.url).sort();

async function node(healthInterval: number): Promise<Running> {
  const file = join(tempDir(), "lb.json");
  await Bun.write(
    file,
    JSON.stringify({
      listen: { port: 0, hostname: "127.0.0.1" },
      backends: [a.url, b.url],
      strategy: "round-robin",
      health: { interval: healthInterval, eject: { consecutiveFailures: 0, errorRate: 0 } },
      cluster: { redis: redis.url, name: "e2e" },
      admin: { token: TOKEN },
      log: { access: false },
    }),
  );
  return startFulcrum(["--config", file]);
}

/** The Redis wants a password, given in the URL as operators give it. */
const PASSWORD = "s3cret pass";

beforeAll(async () => {
  redis = await startRedis(undefined, PASSWORD);
  [a, b, c] = await Promise.all([startBackend("a"), startBackend("b"), startBackend("c")]);
  one = await node(300);
  // The second node probes rarely: what it knows of a dead backend comes from the first.
  two = await node(60_000);
});

afterAll(async () => {
  await Promise.all([one?.stop(), two?.stop()]);
});

describe("shared state through Redis", () => {
  test("both nodes list each other", async () => {
    await waitFor(async () => (await status(one)).nodes?.length === 2, 3000, "two nodes on the first");
    const nodes = (await status(two)).nodes!;
    expect(nodes).toHaveLength(2);
    expect(nodes[0]!.port).toBe(two.port); // this node first
  });

  test("an admin add, drain and remove on one node shows on the other within a second", async () => {
    const added = await admin(one, "POST", "backends", { url: c.url });
    expect(added.status).toBe(201);
    const start = performance.now();
    await waitFor(async () => (await urls(two)).includes(c.url), 1000, "the added backend on the second node");
    expect(performance.now() - start).toBeLessThan(1000);

    const onTwo = (await status(two)).instances.find((i) => i.url === a.url)!;
    expect((await admin(two, "POST", `backends/${onTwo.id}/drain`)).status).toBe(200);
    await waitFor(async () => (await status(one)).instances.find((i) => i.url === a.url)?.state === "draining", 1000, "a draining on the first node");

    const cOnTwo = (await status(two)).instances.find((i) => i.url === c.url)!;
    expect((await admin(two, "DELETE", `backends/${cOnTwo.id}`)).status).toBe(200);
    await waitFor(async () => !(await urls(one)).includes(c.url), 1500, "c gone from the first node");

    // A reload on one node makes the file the truth again, on both.
    one.proc.kill("SIGHUP");
    await waitFor(async () => (await status(two)).instances.every((i) => i.state === "healthy"), 1500, "a undrained on the second node");
  }, 15_000);

  test("a backend the first node sees die is kept out on the second before its own probes notice", async () => {
    const killedUrl = b.url;
    const port = b.port;
    await b.stop("SIGKILL");
    await waitFor(async () => (await status(two)).instances.find((i) => i.url === killedUrl)?.healthy === false, 3000, "b out on the second node");
    const onTwo = (await status(two)).instances.find((i) => i.url === killedUrl)!;
    expect(onTwo.state).toBe("healthy"); // its own probes have not run since the start
    // Every request to the second node goes to a, none to the dead one: no failures.
    const statuses = await Promise.all(Array.from({ length: 20 }, () => fetch(`${two.url}/`).then((r) => r.status)));
    expect(statuses.every((s) => s === 200)).toBe(true);
    b = await startBackend("b", port);
    await waitFor(async () => (await status(two)).instances.find((i) => i.url === killedUrl)?.healthy === true, 3000, "b back on the second node");
  }, 15_000);

  test("Redis killed mid-traffic and restarted: no request fails, one warning and one recovery per node, admin refused meanwhile", async () => {
    let sent = 0;
    let failed = 0;
    let stop = false;
    const loop = async (lb: Running) => {
      for (let i = 0; i < 20_000 && !stop; i++) {
        sent++;
        const res = await fetch(`${lb.url}/`).catch(() => undefined);
        if (res?.status !== 200) failed++;
        await res?.text();
      }
    };
    const traffic = Promise.all([loop(one), loop(two), loop(one), loop(two)]);
    await Bun.sleep(500);
    await redis.stop();
    await one.stdout.wait(/shared state: Redis unavailable/, 3000);
    await two.stdout.wait(/shared state: Redis unavailable/, 3000);
    const refused = await admin(one, "POST", "backends", { url: c.url });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: string }).error).toContain("shared state (Redis) unavailable");
    await Bun.sleep(1000);
    redis = await startRedis(redis.port, PASSWORD);
    await one.stdout.wait(/shared state: Redis is back/, 5000);
    await two.stdout.wait(/shared state: Redis is back/, 5000);
    await Bun.sleep(500);
    stop = true;
    await traffic;
    expect({ sent: sent > 200, failed }).toEqual({ sent: true, failed: 0 });
    for (const lb of [one, two]) {
      console.log(lb.stdout.text.split("\n").filter((l) => l.includes("shared state")).join("\n"));
      expect(lb.stdout.text.match(/shared state: Redis unavailable/g)).toHaveLength(1);
      expect(lb.stdout.text.match(/shared state: Redis is back/g)).toHaveLength(1);
    }
    // Resynchronised: the registry was seeded again from what the nodes serve, and changes work again.
    expect(await urls(two)).toEqual([a.url, b.url].sort());
    expect((await admin(one, "POST", "backends", { url: c.url })).status).toBe(201);
    await waitFor(async () => (await urls(two)).includes(c.url), 1000, "c on the second node after the recovery");
  }, 30_000);

  test("the admin token is never written to Redis; every key is under the cluster's namespace", async () => {
    const cli = (args: string[]) => Bun.spawnSync(["redis-cli", "-p", String(redis.port), "-a", PASSWORD, "--no-auth-warning", ...args]).stdout.toString();
    const keys = cli(["--scan"]).split("\n").filter(Boolean);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.filter((k) => !k.startsWith("fulcrum:e2e:"))).toEqual([]);
    for (const key of keys) {
      const type = cli(["TYPE", key]).trim();
      const value = type === "hash" ? cli(["HGETALL", key]) : type === "string" ? cli(["GET", key]) : "";
      expect(value).not.toContain(TOKEN);
    }
  });

  test("a node killed disappears from the other's list within its TTL", async () => {
    await waitFor(async () => (await status(one)).nodes?.length === 2, 3000, "both nodes listed again");
    await two.stop("SIGKILL");
    const killed = performance.now();
    await waitFor(async () => (await status(one)).nodes?.length === 1, 5000, "one node left");
    expect(performance.now() - killed).toBeLessThan(4000);
  }, 10_000);
});
