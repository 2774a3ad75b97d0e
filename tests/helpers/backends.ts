/** Plain backend values for unit tests of pure logic (no sockets). */
import type { Backend, PickContext } from "../../src/types.ts";

export function backend(id: string, fields: Partial<Backend> = {}): Backend {
  return {
    id,
    url: `http://${id}.test:80`,
    host: `${id}.test:80`,
    port: 80,
    weight: 1,
    maxConnections: 0,
    slots: 0,
    managed: false,
    pid: undefined,
    state: "healthy",
    available: true,
    inflight: 0,
    totalRequests: 0,
    failedRequests: 0,
    responseTimeMs: 0,
    load: 0,
    restarts: 0,
    warmUntil: 0,
    ...fields,
  };
}

export function ctx(clientIp = "10.0.0.1", headers: Record<string, string> = {}): PickContext {
  return { clientIp, header: (name) => headers[name.toLowerCase()] ?? null };
}

/** Deterministic [0, 1) sequence (mulberry32) for strategies that take a random source. */
export function seededRandom(seed = 42): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** How many picks each backend id got. */
export function tally(ids: readonly (string | undefined)[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const id of ids) if (id) counts[id] = (counts[id] ?? 0) + 1;
  return counts;
}
