/**
 * `GET /lb-status`: a superset of the original autoscaler's shape
 * (`total`, `healthy`, `instances[].{id, port, healthy, activeRequests,
 * totalRequests, responseTime, load}`), plus state, URLs, scaling and each
 * backend's response-time histogram.
 */
import { LATENCY_BUCKETS, type LatencyCounts } from "../runtime/latency.ts";
import { BACKEND_OUTCOMES, type BackendOutcome } from "../runtime/outcomes.ts";
import type { Circuit } from "../decide/ejection.ts";
import type { NodeInfo } from "../shared-state/shared-state.ts";
import type { BackendView } from "../types.ts";

/** A backend as the status reports it: its counters and, when kept, its latency histogram, outcome counts and circuit. */
export type StatusBackend = BackendView & {
  readonly latency?: LatencyCounts;
  readonly outcomes?: readonly number[];
  /** Passive health (decide/ejection.ts): closed, open (ejected) or half-open (trial requests only). */
  readonly circuit?: Circuit;
};

/** The edge's own counters and gauges (runtime/outcomes.ts EdgeStats), host-wide in a cluster. */
export interface EdgeFacts {
  readonly refused: number;
  readonly rateLimited: number;
  readonly noBackend: number;
  readonly retries: number;
  readonly retriesDenied: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Open client connections; null when the engine cannot count them (serve). */
  readonly connections: number | null;
  readonly webSockets: number;
  /** Requests waiting for a backend slot now. */
  readonly queued: number;
}

const NO_LATENCY: LatencyCounts = { counts: new Array<number>(LATENCY_BUCKETS).fill(0), sumMs: 0 };

export interface ScalingStatus {
  readonly min: number;
  readonly max: number;
  readonly desired: number;
  /** Average load per ready instance over the stable window. */
  readonly load: number;
  /** Scale actions so far, by direction. */
  readonly actions?: { readonly up: number; readonly down: number };
  /** The last scale action, whatever caused it (autoscaler, cold start, admin). */
  readonly lastAction: { readonly direction: "up" | "down"; readonly from: number; readonly to: number; readonly reason: string; readonly at: string } | null;
}

export interface StatusFacts {
  readonly backends: readonly StatusBackend[];
  readonly strategy: string;
  /** Seconds since the balancer started. */
  readonly uptime: number;
  readonly scaling: ScalingStatus;
  readonly draining: boolean;
  readonly edge?: EdgeFacts;
  /** Cluster workers (`cluster.workers` > 1): each one's pid and requests so far. */
  readonly workers?: readonly { readonly index: number; readonly pid: number; readonly totalRequests: number }[];
  /** Nodes sharing this pool through Redis (cluster.redis), this one first. */
  readonly nodes?: readonly NodeStatus[];
}

/** A node sharing this pool through Redis (shared-state/shared-state.ts). */
export type NodeStatus = NodeInfo;

export function statusBody(facts: StatusFacts) {
  return {
    total: facts.backends.length,
    healthy: facts.backends.filter((b) => b.available).length,
    strategy: facts.strategy,
    uptime: Math.round(facts.uptime),
    draining: facts.draining,
    scaling: facts.scaling,
    ...(facts.edge ? { traffic: facts.edge } : {}),
    ...(facts.workers ? { workers: facts.workers } : {}),
    ...(facts.nodes ? { nodes: facts.nodes } : {}),
    instances: facts.backends.map(backendStatus),
  };
}

export function backendStatus(b: StatusBackend) {
  const latency = b.latency ?? NO_LATENCY;
  return {
    id: b.id,
    url: b.url,
    port: b.port,
    pid: b.pid ?? null,
    managed: b.managed,
    state: b.state,
    healthy: b.available,
    circuit: b.circuit ?? "closed",
    activeRequests: b.inflight,
    totalRequests: b.totalRequests,
    failedRequests: b.failedRequests,
    responseTime: Math.round(b.responseTimeMs * 10) / 10,
    load: Math.round(b.load * 100) / 100,
    weight: b.weight,
    maxConnections: b.maxConnections,
    restarts: b.restarts,
    /** Time to response headers: counts per bucket of LATENCY_BOUNDS_SECONDS (not cumulative; the last is above 30 s). */
    latency: { counts: Array.from(latency.counts), sumMs: Math.round(latency.sumMs * 10) / 10 },
    /** Attempts by outcome (status class, timeout, upstream_error) and what else happened (ejections, health transitions). */
    outcomes: Object.fromEntries(BACKEND_OUTCOMES.map((name, i) => [name, b.outcomes?.[i] ?? 0])) as Record<BackendOutcome, number>,
  };
}
