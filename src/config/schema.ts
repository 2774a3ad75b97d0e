/**
 * The configuration contract: what an operator writes (`Config`, everything
 * optional, defaults documented where declared) and what the rest of Fulcrum
 * receives after validation (`ResolvedConfig`, nothing optional).
 *
 * All durations are milliseconds and all sizes bytes unless a name says otherwise.
 */
import type { EjectConfig } from "../decide/ejection.ts";
import type { Strategy } from "../types.ts";

export const STRATEGY_NAMES = ["round-robin", "least-load", "weighted", "p2c", "hash"] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `"ip"` or `"header:<Name>"`: what the `hash` strategy and the rate limiter key on. */
export type KeySource = "ip" | `header:${string}`;

/** A static backend: a URL, `{ url, weight }`, or the distributed balancer's `{ host, port }`. */
export type BackendConfig = string | { url: string; weight?: number; maxConnections?: number } | { host: string; port: number; weight?: number; maxConnections?: number };

export interface Config {
  listen?: {
    /** @default 4000 */
    port?: number;
    /** @default "0.0.0.0" */
    hostname?: string;
    /** Serve HTTPS with these PEM files (paths). */
    tls?: { cert: string; key: string };
  };
  /** Static backends, routed to as given. */
  backends?: BackendConfig[];
  /** Backends Fulcrum spawns and supervises itself. */
  instances?: {
    /** Entry file, run as `bun run <location> --port <N>`. Relative to the config file. */
    location?: string;
    /** Argv to run instead of `location`; `--port <N>` is appended and `PORT=<N>` set. */
    command?: string[];
    /** Working directory of each instance. @default the config file's directory */
    cwd?: string;
    /** Extra environment for each instance. */
    env?: Record<string, string>;
    /** @default 2 */
    min?: number;
    /** @default 8 */
    max?: number;
    /** First port tried; ports in use are skipped. @default 5001 */
    basePort?: number;
    /** How long a new instance may take to pass its first health probe. @default 10000 */
    startTimeout?: number;
    /** SIGTERM-to-SIGKILL grace for a stopping instance. @default 10000 */
    stopTimeout?: number;
    /** Quick deaths in a row (each within 30 s of health) before an instance is marked failed. @default 10 */
    maxRestarts?: number;
    /** A new instance's share of traffic ramps up over this long. @default 3000 */
    slowStart?: number;
    /** Requests in flight to one instance at most; beyond it requests wait in `proxy.queue`. 0: no limit. @default 0 */
    maxConnections?: number;
  };
  /**
   * A strategy name, `{ name: "hash", key: "header:X-User" }`, or your own
   * object implementing `Strategy`. @default "least-load"
   */
  strategy?: StrategyName | { name: StrategyName; key?: KeySource } | Strategy;
  health?: {
    /** @default "/health" */
    path?: string;
    /** @default 5000 */
    interval?: number;
    /** @default 2000 */
    timeout?: number;
    /** Consecutive successful probes that make an unhealthy backend healthy. @default 1 */
    rise?: number;
    /** Consecutive failed probes that make a healthy backend unhealthy. @default 2 */
    fall?: number;
    /**
     * Passive checks, one circuit per backend: it opens (the backend is
     * ejected) after `consecutiveFailures` failed requests in a row or an
     * `errorRate` over `window`, turns half-open after `baseTime` × times
     * opened (or when a probe passes), and closes after `trials` successes.
     */
    eject?: {
      /** Failed requests in a row that open the circuit; 0: off. @default 3 */
      consecutiveFailures?: number;
      /** Open lasts `baseTime` × times opened. @default 10000 */
      baseTime?: number;
      /** Share of failed requests in `window` that opens it (0..1); 0: off. @default 0.5 */
      errorRate?: number;
      /** Requests `window` must hold before `errorRate` counts. @default 20 */
      minRequests?: number;
      /** Length of the error-rate window, ms. @default 10000 */
      window?: number;
      /** Half-open: trial requests in flight at most, and successes that close it. @default 3 */
      trials?: number;
    };
  };
  scaling?: {
    /** @default 5000 */
    checkInterval?: number;
    /** @default 3 */
    scaleUpThreshold?: number;
    /** @default 0.5 */
    scaleDownThreshold?: number;
    /** @default 30000 */
    idleTimeout?: number;
    /** @default 10000 */
    cooldown?: number;
    /** Load is averaged over this window for scaling decisions and `/lb-status`. @default 30000 */
    stableWindow?: number;
    /** The short window that detects spikes. @default 3000 */
    panicWindow?: number;
    /** Panic when the panic window needs this many times the ready instances. @default 2 */
    panicThreshold?: number;
  };
  proxy?: {
    /** Deadline for opening an upstream connection (the serve engine: WebSocket upstreams only; fetch() has its own). @default 5000 */
    connectTimeout?: number;
    /** Deadline for the first response byte; 504 after it. @default 60000 */
    responseTimeout?: number;
    /** Client connection idle timeout (Bun caps it at 255 s). @default 60000 */
    idleTimeout?: number;
    /** Retries on another backend after a connection failure. @default 2 */
    retries?: number;
    /** @default 104857600 */
    maxBodySize?: number;
    /** Send the client's `Host` upstream. @default true */
    preserveHost?: boolean;
    /** Peers whose `X-Forwarded-*` headers are believed: `true`, or a list of CIDRs. @default false */
    trustProxy?: boolean | string[];
    /** Retired: accepted and ignored (with a warning). The serve engine uses `fetch()`, the listen engine its own client. */
    transport?: "fetch" | "http1";
    /**
     * The HTTP edge: `"listen"`, Fulcrum's own HTTP/1.1 server on `Bun.listen`
     * (raw sockets, strict parsing, pipelining), or `"serve"`, the original
     * `Bun.serve` + `fetch()` path. @default "listen"
     */
    engine?: "listen" | "serve";
    /** A whole request head must arrive within this long, else 408 and close (nginx `client_header_timeout`). @default 10000 */
    headerTimeout?: number;
    /** Client connections open at once; beyond it new ones get 503 and are closed. @default 10000 */
    maxConnections?: number;
    /**
     * Requests waiting for a slot when every suitable backend is at its
     * `maxConnections`: at most `size` of them, each at most `timeout` ms; beyond
     * either, 503 with Retry-After. @default { size: 1000, timeout: 5000 }
     */
    queue?: { size?: number; timeout?: number };
    /**
     * Retries in flight at most max(`min`, `ratio` × requests in flight), so that
     * retries cannot multiply the load on a failing pool (Envoy's retry budget).
     * @default { ratio: 0.2, min: 3 }
     */
    retryBudget?: { ratio?: number; min?: number };
    /**
     * Envoy's panic threshold (0..1): when fewer than this share of the
     * backends that are not stopped are available, requests spread over all of
     * them, unhealthy and ejected included, rather than crushing the few left.
     * 0: off. @default 0
     */
    panicThreshold?: number;
  };
  rateLimit?: {
    requestsPerSecond: number;
    /** @default requestsPerSecond */
    burst?: number;
    /** @default "ip" */
    key?: KeySource;
    /** @default "memory" */
    store?: "memory" | "redis";
  };
  admin?: {
    /** Serve the `/lb-*` endpoints on this port only. @default the listen port */
    port?: number;
    /** Bearer token that `/lb-admin` mutations require. */
    token?: string;
  };
  cluster?: {
    /** Processes sharing the listen port. @default 1 */
    workers?: number;
    /**
     * Redis URL (`redis://` or `rediss://`, password in the URL): every node on
     * the same Redis and `name` shares static backends, admin changes and
     * health, and sees the others in `/lb-status` `nodes`.
     */
    redis?: string;
    /** The namespace of this cluster's Redis keys (`fulcrum:<name>:…`). @default "default" */
    name?: string;
  };
  log?: {
    /** @default "info" */
    level?: LogLevel;
    /** @default "text" */
    format?: "text" | "json";
    /** Per-request `REQUEST:`/`RESPONSE:` lines. @default true */
    access?: boolean;
  };
}

export type StrategySpec =
  | { readonly kind: "builtin"; readonly name: StrategyName; readonly key: KeySource }
  | { readonly kind: "custom"; readonly strategy: Strategy };

export interface ResolvedBackend {
  /** Normalized origin: `http://localhost:3001`. */
  readonly url: string;
  /** `host:port` as written in the URL. */
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  /** Requests in flight to it at most (0: no limit). */
  readonly maxConnections: number;
}

export interface ResolvedInstances {
  /** Full argv before `--port <N>` is appended. */
  readonly command: readonly string[];
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  readonly min: number;
  readonly max: number;
  readonly basePort: number;
  readonly startTimeout: number;
  readonly stopTimeout: number;
  readonly maxRestarts: number;
  readonly slowStart: number;
  readonly maxConnections: number;
}

export interface ResolvedConfig {
  readonly listen: { readonly port: number; readonly hostname: string; readonly tls: { readonly cert: string; readonly key: string } | null };
  readonly backends: readonly ResolvedBackend[];
  readonly instances: ResolvedInstances | null;
  readonly strategy: StrategySpec;
  readonly health: {
    readonly path: string;
    readonly interval: number;
    readonly timeout: number;
    readonly rise: number;
    readonly fall: number;
    readonly eject: EjectConfig;
  };
  readonly scaling: {
    readonly checkInterval: number;
    readonly scaleUpThreshold: number;
    readonly scaleDownThreshold: number;
    readonly idleTimeout: number;
    readonly cooldown: number;
    readonly stableWindow: number;
    readonly panicWindow: number;
    readonly panicThreshold: number;
  };
  readonly proxy: {
    readonly connectTimeout: number;
    readonly responseTimeout: number;
    readonly idleTimeout: number;
    readonly retries: number;
    readonly maxBodySize: number;
    readonly preserveHost: boolean;
    /** `true` trusts every peer; a list trusts peers inside those CIDRs. */
    readonly trustProxy: boolean | readonly string[];
    /** `proxy.transport` was set: it no longer does anything (a warning says so at start). */
    readonly retiredTransport: boolean;
    readonly engine: "listen" | "serve";
    readonly headerTimeout: number;
    readonly maxConnections: number;
    readonly queue: { readonly size: number; readonly timeout: number };
    readonly retryBudget: { readonly ratio: number; readonly min: number };
    readonly panicThreshold: number;
  };
  readonly rateLimit: {
    readonly requestsPerSecond: number;
    readonly burst: number;
    readonly key: KeySource;
    readonly store: "memory" | "redis";
  } | null;
  readonly admin: { readonly port: number | null; readonly token: string | null };
  readonly cluster: { readonly workers: number; readonly redis: string | null; readonly name: string };
  readonly log: { readonly level: LogLevel; readonly format: "text" | "json"; readonly access: boolean };
}
