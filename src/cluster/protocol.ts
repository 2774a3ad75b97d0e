/**
 * Messages between the primary process and its workers (`cluster.workers`),
 * over Bun's IPC channel (JSON).
 */
import type { Circuit } from "../decide/ejection.ts";
import type { SeriesPoint } from "../runtime/series.ts";
import type { BackendSnapshot } from "../types.ts";

/**
 * A worker's own counters for one backend, totals since the worker started:
 * [id, inflight, total, failed, latency sum (ms), latency counts per bucket
 * (runtime/latency.ts), outcome counts (runtime/outcomes.ts BACKEND_OUTCOMES),
 * the worker's circuit for it (each process keeps its own passive health)].
 */
export type Counters = [id: string, inflight: number, total: number, failed: number, latencySumMs: number, latencyCounts: number[], outcomes: number[], circuit: Circuit];

/** A worker's edge counters since it started (runtime/outcomes.ts edgeCounts) and its gauges. */
export interface EdgeReport {
  readonly counts: number[];
  readonly connections: number | null;
  readonly webSockets: number;
  readonly queued: number;
}

export type ToWorker =
  /** Membership and health changed (sent on every change). */
  | { readonly type: "pool"; readonly backends: BackendSnapshot[] }
  /** The primary's `/lb-status` body, refreshed every 250 ms, for workers to answer with. */
  | { readonly type: "status"; readonly body: unknown }
  /** The config file changed (SIGHUP, admin reload): read it again. */
  | { readonly type: "reload" }
  /** Points of the dashboard's time series: the backlog when the worker starts, then each new one. */
  | { readonly type: "series"; readonly points: SeriesPoint[] }
  | { readonly type: "reply"; readonly id: number; readonly result: unknown };

export type ToPrimary =
  | { readonly type: "counters"; readonly counters: Counters[]; readonly edge: EdgeReport }
  | { readonly type: "coldStart"; readonly id: number }
  | {
      readonly type: "admin";
      readonly id: number;
      readonly method: string;
      readonly path: string;
      readonly authorization: string | null;
      readonly body: string;
    };

/** An admin response carried back over IPC. */
export interface AdminReply {
  readonly status: number;
  readonly headers: [string, string][];
  readonly body: string;
}

/** Environment variables a worker is started with. */
export const WORKER_ENV = "FULCRUM_WORKER";
export const WORKER_PORT_ENV = "FULCRUM_WORKER_PORT";
