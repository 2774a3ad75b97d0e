/**
 * One backend as the pool keeps it (Backend plus the bookkeeping only the pool
 * touches), how a fresh one starts, what a cluster worker is sent of it, and
 * the panic rule over a pool of them. Only runtime/pool.ts writes these.
 */
import type { Circuit, Outlier } from "../decide/ejection.ts";
import { FRESH_OUTLIER } from "../decide/ejection.ts";
import type { ProbeStreak } from "../decide/health.ts";
import type { Backend, BackendSnapshot } from "../types.ts";
import { LatencyHistogram } from "./latency.ts";
import { newBackendOutcomes } from "./outcomes.ts";

/** Backend plus the bookkeeping only the pool touches. */
export interface Member extends Backend {
  streak: ProbeStreak;
  /** Passive health: the backend's circuit (decide/ejection.ts). */
  outlier: Outlier;
  /** This process's share of `maxConnections` as configured; `slots` narrows to the trial count while half-open. */
  readonly configuredSlots: number;
  slots: number;
  /** The error-rate window: requests and failures since `windowStart` (counted only when `eject.errorRate` is on). */
  windowRequests: number;
  windowFailures: number;
  windowStart: number;
  /** A quorum of peer nodes reports it down (cluster.redis, decide/peers.ts): no new traffic here either. */
  peerDown: boolean;
  /** Set once the first probe result was logged, so startup shows each backend's health once. */
  probed: boolean;
  /** Active probes that passed so far (a worker ends its passive ejection when the primary's count moves). */
  probePasses: number;
  /** Time to response headers of every response from this backend (this process's). */
  readonly latency: LatencyHistogram;
  /** This process's outcome counters for the backend, indexed by BACKEND_OUTCOMES (runtime/outcomes.ts). */
  readonly outcomes: number[];
  /** In a cluster's primary: the workers' counters for this backend, summed (see cluster/primary.ts). */
  readonly remote: RemoteCounters;
}

/** The workers' share of a backend's counters. Totals only grow while the member exists; `inflight` is their latest sum. */
export interface RemoteCounters {
  inflight: number;
  /** The worst circuit any worker has for this backend (workers keep their own passive health). */
  circuit: Circuit;
  total: number;
  failed: number;
  readonly latency: LatencyHistogram;
  readonly outcomes: number[];
}

/** What a new member is made from (config, the supervisor, or a primary's snapshot). */
export type MemberFields = Pick<Member, "id" | "url" | "host" | "port" | "weight" | "maxConnections" | "managed" | "state">;

/** `processes`: how many share the backend's maxConnections (cluster.workers). */
export function newMember(fields: MemberFields, processes: number): Member {
  const configuredSlots = fields.maxConnections > 0 ? Math.max(1, Math.ceil(fields.maxConnections / processes)) : 0;
  return {
    ...fields,
    configuredSlots,
    slots: configuredSlots,
    windowRequests: 0,
    windowFailures: 0,
    windowStart: Date.now(),
    peerDown: false,
    pid: undefined,
    available: false,
    inflight: 0,
    totalRequests: 0,
    failedRequests: 0,
    responseTimeMs: 0,
    load: 0,
    restarts: 0,
    warmUntil: 0,
    latency: new LatencyHistogram(),
    outcomes: newBackendOutcomes(),
    remote: { inflight: 0, circuit: "closed", total: 0, failed: 0, latency: new LatencyHistogram(), outcomes: newBackendOutcomes() },
    streak: { healthy: fields.state === "healthy", count: 0 },
    outlier: FRESH_OUTLIER,
    probed: false,
    probePasses: 0,
  };
}

/** What a cluster worker needs of a backend. */
export function memberSnapshot(m: Member): BackendSnapshot {
  return {
    id: m.id,
    url: m.url,
    host: m.host,
    port: m.port,
    weight: m.weight,
    managed: m.managed,
    state: m.state,
    pid: m.pid ?? null,
    restarts: m.restarts,
    warmUntil: m.warmUntil,
    probePasses: m.probePasses,
    maxConnections: m.maxConnections,
    peerDown: m.peerDown,
  };
}

/**
 * Envoy's panic mode (`proxy.panicThreshold`, 0: off): fewer than that share of
 * the live backends (healthy or unhealthy, not starting, draining or stopped)
 * are available. Selection then spreads over all live ones.
 */
export function inPanic(members: readonly Member[], threshold: number): boolean {
  if (threshold <= 0) return false;
  let live = 0;
  let available = 0;
  for (const m of members) {
    if (m.state !== "healthy" && m.state !== "unhealthy") continue;
    live++;
    if (m.available) available++;
  }
  return live > 0 && available < threshold * live;
}
