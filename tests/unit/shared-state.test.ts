/**
 * Shared state between nodes (src/shared-state/shared-state.ts) against an
 * in-memory Redis on a fake clock: the registry seeded once and followed by
 * every node, admin changes and reloads through it, heartbeats that expire,
 * peers' health verdicts by quorum, and Redis going away and coming back.
 * The pure rules are in decide/peers.ts, tested at the end.
 */
import { describe, expect, test } from "bun:test";
import { decodeEntries, downByPeers, encodeEntry, planRegistry } from "../../src/decide/peers.ts";
import { Logger } from "../../src/runtime/log.ts";
import { Pool } from "../../src/runtime/pool.ts";
import { NODE_TTL_MS, SharedState, SharedStateUnavailable } from "../../src/shared-state/shared-state.ts";
import { MemoryRedis } from "../helpers/memory-store.ts";

const health = { path: "/health", interval: 1000, timeout: 500, rise: 1, fall: 2, eject: { consecutiveFailures: 3, baseTime: 10_000, errorRate: 0.5, minRequests: 20, window: 10_000, trials: 3 } };
const backend = (port: number, weight = 1) => ({ url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, port, weight, maxConnections: 0 });

function node(redis: MemoryRedis, id: string, config: ReturnType<typeof backend>[]) {
  const lines: string[] = [];
  const log = new Logger({ level: "info", format: "text", access: false }, { write: (chunk) => void lines.push(...chunk.split("\n").filter(Boolean)), flush() {} });
  const pool = new Pool(health);
  for (const b of config) pool.addStatic(b);
  const shared = new SharedState({
    store: redis.store(),
    name: "test",
    self: { id, host: "host", port: 4000, version: "0.1.0", started: new Date(0).toISOString() },
    pool,
    log,
    drainMs: () => 0,
    now: () => redis.now,
    healthTtlMs: 3000,
  });
  const logLines = () => {
    log.flush();
    return lines;
  };
  return { pool, shared, logLines, urls: () => pool.backends.map((b) => b.url).sort() };
}
/** Lets queued microtasks (pub/sub deliveries, drains) run. */
const settle = () => Bun.sleep(5);

describe("the shared registry", () => {
  test("the first node seeds it from its config; a later node follows the registry, not its own file", async () => {
    const redis = new MemoryRedis();
    const a = node(redis, "a", [backend(1), backend(2)]);
    await a.shared.start();
    const b = node(redis, "b", [backend(3)]);
    await b.shared.start();
    await settle();
    expect(b.urls()).toEqual(["http://127.0.0.1:1", "http://127.0.0.1:2"]);
    expect(a.urls()).toEqual(["http://127.0.0.1:1", "http://127.0.0.1:2"]);
  });

  test("a change on one node shows on the other at once (pub/sub), a drain too, and a reload resets both", async () => {
    const redis = new MemoryRedis();
    const a = node(redis, "a", [backend(1)]);
    const b = node(redis, "b", [backend(1)]);
    await a.shared.start();
    await b.shared.start();
    await a.shared.change((entries) => [...entries, { url: "http://127.0.0.1:9", weight: 3, maxConnections: 0, drained: false }]);
    await settle();
    expect(b.urls()).toEqual(["http://127.0.0.1:1", "http://127.0.0.1:9"]);
    expect(b.pool.backends.find((m) => m.url.endsWith(":9"))!.weight).toBe(3);

    await b.shared.change((entries) => entries.map((e) => (e.url.endsWith(":1") ? { ...e, drained: true } : e)));
    await settle();
    expect(a.pool.backends.find((m) => m.url.endsWith(":1"))!.state).toBe("draining");

    await a.shared.reset([backend(1)]);
    await settle();
    for (const n of [a, b]) {
      expect(n.urls()).toEqual(["http://127.0.0.1:1"]);
      expect(n.pool.backends[0]!.state).toBe("healthy");
    }
  });

  test("a missed message is repaired by the next periodic sync", async () => {
    const redis = new MemoryRedis();
    const a = node(redis, "a", [backend(1)]);
    const b = node(redis, "b", [backend(1)]);
    await a.shared.start();
    await b.shared.start();
    // Written behind everyone's back: no message published.
    await redis.store().hset("fulcrum:test:backends", { "http://127.0.0.1:7": encodeEntry({ url: "http://127.0.0.1:7", weight: 1, maxConnections: 0, drained: false }) });
    expect(b.urls()).toEqual(["http://127.0.0.1:1"]);
    await b.shared.sync();
    expect(b.urls()).toEqual(["http://127.0.0.1:1", "http://127.0.0.1:7"]);
  });
});

describe("nodes and health", () => {
  test("nodes see each other; one that stops heartbeating is gone within its TTL", async () => {
    const redis = new MemoryRedis();
    const a = node(redis, "a", [backend(1)]);
    const b = node(redis, "b", [backend(1)]);
    await a.shared.start();
    await b.shared.start();
    await a.shared.sync();
    expect(a.shared.nodes.map((n) => n.id)).toEqual(["a", "b"]);
    expect(b.shared.nodes.map((n) => n.id)).toEqual(["b", "a"]);
    redis.now += NODE_TTL_MS; // b says nothing for a whole TTL
    await a.shared.sync();
    expect(a.shared.nodes.map((n) => n.id)).toEqual(["a"]);
  });

  test("a backend one node sees down is kept out on the other while its own probes say healthy; back when the first sees it up", async () => {
    const redis = new MemoryRedis();
    const a = node(redis, "a", [backend(1), backend(2)]);
    const b = node(redis, "b", [backend(1), backend(2)]);
    await a.shared.start();
    await b.shared.start();
    a.pool.setState(a.pool.backends[0]!, "unhealthy");
    await a.shared.sync();
    await b.shared.sync();
    const [b1, b2] = b.pool.backends;
    expect(b1!.state).toBe("healthy"); // b's own view
    expect(b1!.peerDown).toBe(true);
    expect(b1!.available).toBe(false);
    expect(b2!.available).toBe(true);

    a.pool.setState(a.pool.backends[0]!, "healthy");
    await a.shared.sync();
    await b.shared.sync();
    expect(b1!.available).toBe(true);
  });

  test("a dead node's reports expire with their TTL", async () => {
    const redis = new MemoryRedis();
    const a = node(redis, "a", [backend(1)]);
    const b = node(redis, "b", [backend(1)]);
    await a.shared.start();
    await b.shared.start();
    a.pool.setState(a.pool.backends[0]!, "unhealthy");
    await a.shared.sync();
    await b.shared.sync();
    expect(b.pool.backends[0]!.peerDown).toBe(true);
    redis.now += 3000; // a is gone: its heartbeat and its verdicts expire
    await b.shared.sync();
    expect(b.pool.backends[0]!.peerDown).toBe(false);
  });
});

describe("Redis away", () => {
  test("serving goes on with the last state, one warning, admin refused, one recovery line and a resync", async () => {
    const redis = new MemoryRedis();
    const a = node(redis, "a", [backend(1)]);
    await a.shared.start();
    redis.down = true;
    await a.shared.sync();
    await a.shared.sync();
    expect(a.urls()).toEqual(["http://127.0.0.1:1"]);
    expect(a.pool.backends[0]!.available).toBe(true);
    expect(a.logLines().filter((l) => l.includes("Redis unavailable"))).toHaveLength(1);
    await expect(a.shared.change((e) => e)).rejects.toBeInstanceOf(SharedStateUnavailable);

    // Meanwhile another node changed the registry.
    redis.down = false;
    await redis.store().hset("fulcrum:test:backends", { "http://127.0.0.1:5": encodeEntry({ url: "http://127.0.0.1:5", weight: 1, maxConnections: 0, drained: false }) });
    await a.shared.sync();
    await a.shared.sync();
    expect(a.urls()).toEqual(["http://127.0.0.1:1", "http://127.0.0.1:5"]);
    expect(a.logLines().filter((l) => l.includes("Redis is back"))).toHaveLength(1);
  });

  test("a Redis that comes back empty (no persistence) is seeded again from what the nodes serve: nothing is removed", async () => {
    const redis = new MemoryRedis();
    const a = node(redis, "a", [backend(1)]);
    const b = node(redis, "b", [backend(1)]);
    await a.shared.start();
    await b.shared.start();
    await a.shared.change((entries) => [...entries, { url: "http://127.0.0.1:9", weight: 1, maxConnections: 0, drained: false }]);
    await settle();
    redis.flush();
    await b.shared.sync();
    await a.shared.sync();
    for (const n of [a, b]) expect(n.urls()).toEqual(["http://127.0.0.1:1", "http://127.0.0.1:9"]);
    expect(b.logLines().some((l) => l.includes("seeded from this node's 2 backend(s)"))).toBe(true);
  });

  test("a node that starts while Redis is away serves its file and seeds or follows the registry once Redis answers", async () => {
    const redis = new MemoryRedis();
    redis.down = true;
    const a = node(redis, "a", [backend(1)]);
    await a.shared.start();
    expect(a.shared.available).toBe(false);
    expect(a.urls()).toEqual(["http://127.0.0.1:1"]);
    redis.down = false;
    await a.shared.sync();
    expect(a.shared.available).toBe(true);
    expect(Object.keys(await redis.store().hgetall("fulcrum:test:backends"))).toEqual(["http://127.0.0.1:1"]);
  });
});

describe("the pure rules (decide/peers.ts)", () => {
  test("a quorum of the peers that report on a backend takes it out", () => {
    expect(downByPeers(0, 0)).toBe(false);
    expect(downByPeers(1, 1)).toBe(true);
    expect(downByPeers(1, 2)).toBe(false);
    expect(downByPeers(2, 3)).toBe(true);
    expect(downByPeers(2, 4)).toBe(false);
  });

  test("registry entries round-trip; odd fields are skipped, not fatal", () => {
    const entry = { url: "http://a:1", weight: 2, maxConnections: 5, drained: true };
    expect(decodeEntries({ [entry.url]: encodeEntry(entry), "http://b:1": "not json", "http://c:1": "{}" })).toEqual([entry, { url: "http://c:1", weight: 1, maxConnections: 0, drained: false }]);
  });

  test("planRegistry: add, remove, reweight, drain, and undrain only what the registry drained", () => {
    const plan = planRegistry(
      [
        { url: "a", weight: 1, draining: false, drainedByRegistry: false },
        { url: "b", weight: 1, draining: false, drainedByRegistry: false },
        { url: "c", weight: 1, draining: true, drainedByRegistry: true },
        { url: "d", weight: 1, draining: true, drainedByRegistry: false },
      ],
      [
        { url: "a", weight: 2, maxConnections: 0, drained: false },
        { url: "c", weight: 1, maxConnections: 0, drained: false },
        { url: "d", weight: 1, maxConnections: 0, drained: false },
        { url: "e", weight: 1, maxConnections: 0, drained: true },
      ],
    );
    expect(plan).toEqual({
      add: [{ url: "e", weight: 1, maxConnections: 0, drained: true }],
      remove: ["b"],
      reweight: [{ url: "a", weight: 2 }],
      drain: [],
      undrain: ["c"],
    });
  });
});
