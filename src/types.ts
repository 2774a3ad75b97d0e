/**
 * The vocabulary every layer shares. Imports nothing.
 */

/** Lifecycle state of a backend, as shown in `/lb-status`. */
export type BackendState = "starting" | "healthy" | "unhealthy" | "draining" | "stopped" | "failed";

/**
 * One upstream the balancer can route to: a static backend from the config or
 * a managed instance the supervisor started. The pool store owns these objects
 * and is their only writer: the proxy, the supervisor, reloads and the shared
 * registry go through its methods (begin/release/recordOutcome, setState,
 * setWeight, ...); the load sampler alone writes `load`; strategies only read.
 */
export interface Backend {
  /** Stable id used by `/lb-status` and `/lb-admin` (`b1`, `i3`, ...). */
  readonly id: string;
  /** Origin without a trailing slash, as the operator wrote it: `http://localhost:3001`. */
  readonly url: string;
  /** `host:port` of `url`, sent as `Host` when `proxy.preserveHost` is false. */
  readonly host: string;
  readonly port: number;
  /** Relative share of traffic for the `weighted` and `hash` strategies. */
  weight: number;
  /** `maxConnections` as configured: requests in flight to it at most (0: no limit). */
  readonly maxConnections: number;
  /** This process's share of `maxConnections` (a cluster divides it over its processes); 0: no limit. */
  readonly slots: number;
  /** True for instances Fulcrum spawned itself. */
  readonly managed: boolean;
  pid: number | undefined;
  state: BackendState;
  /**
   * True when strategies may route new requests here: `state` is healthy and
   * passive checks have not ejected it. Kept up to date by the pool store so
   * the hot path reads one boolean.
   */
  available: boolean;
  /** Requests (and open WebSockets) currently proxied to this backend. */
  inflight: number;
  totalRequests: number;
  /** Requests that ended in a connection failure, a timeout or a 5xx. */
  failedRequests: number;
  /** Exponentially weighted moving average of time to response headers, ms. */
  responseTimeMs: number;
  /** Time-averaged in-flight requests over the last scaling window (SPEC "load"). */
  load: number;
  /** Times a managed instance was restarted after exiting on its own. */
  restarts: number;
  /**
   * Slow start: until this time (ms since epoch) a new instance gets a growing
   * share of the traffic it would otherwise get; 0 once warm.
   */
  warmUntil: number;
}

/** What a strategy may read of a backend. */
export type BackendView = Readonly<Backend>;

/** Per-request facts a strategy may use to decide. */
export interface PickContext {
  /** The client address Fulcrum believes (see `proxy.trustProxy`). */
  readonly clientIp: string;
  /** Request header lookup (lower-case names), for header-keyed hashing. */
  header(name: string): string | null;
}

/**
 * A load-balancing strategy: one decision, no I/O. Return `undefined` when no
 * backend in `pool` is available; the HTTP edge turns that into a 503.
 *
 * Strategies must skip backends whose `available` is false. They may keep
 * private state (a cursor, weights), but must tolerate backends appearing and
 * disappearing between calls.
 */
export interface Strategy {
  readonly name: string;
  pick(pool: readonly BackendView[], ctx: PickContext): BackendView | undefined;
}

/** What a cluster worker needs to know about a backend to route to it (the primary sends these). */
export interface BackendSnapshot {
  readonly id: string;
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  readonly managed: boolean;
  readonly state: BackendState;
  readonly pid: number | null;
  readonly restarts: number;
  readonly warmUntil: number;
  readonly maxConnections: number;
  /** Active probes that passed so far, as the primary counts them. */
  readonly probePasses: number;
  /** Peer nodes (cluster.redis) report it down: the primary's verdict, followed by its workers. */
  readonly peerDown: boolean;
}
