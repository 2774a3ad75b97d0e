/**
 * Fulcrum's own upstream transport: pooled HTTP/1.1 keep-alive connections
 * over Bun.connect, one pool per backend, no limit on how many stay open.
 * It exists because Bun's fetch() keeps at most 64 idle sockets per process:
 * with more requests in flight than that, every extra request opens a new TCP
 * connection (see bench/README.md). Idle connections are closed after
 * `idleTimeout`; a request whose reused connection turns out to be closed
 * before any response byte is retried once on a fresh one when it can be resent.
 */
import type { BackendView } from "../../types.ts";
import { Connection, type Origin } from "./connection.ts";
import type { Transport, UpstreamRequest } from "./transport.ts";

export interface Http1Options {
  readonly connectTimeout: number;
  /** Idle connections older than this are closed (keep it below the backends' keep-alive timeout). */
  readonly idleTimeout: number;
}

/**
 * A request that cannot be resent (its body is a stream) only reuses a
 * connection idle for less than this: the older one is, the likelier the
 * backend closes it just as we write, and then the request is lost.
 */
const SAFE_REUSE_MS = 1000;
const SWEEP_EVERY_MS = 1000;

class OriginPool {
  readonly #origin: Origin;
  readonly #options: Http1Options;
  readonly #idle: Connection[] = [];

  constructor(origin: Origin, options: Http1Options) {
    this.#origin = origin;
    this.#options = options;
  }

  /** The most recently used idle connection young enough, or a new one. */
  async acquire(maxIdleMs: number): Promise<Connection> {
    const now = performance.now();
    while (this.#idle.length > 0) {
      const connection = this.#idle.pop() as Connection;
      if (connection.usable && now - connection.lastUsed < maxIdleMs) return connection;
      connection.destroy();
    }
    return this.connect();
  }

  async connect(): Promise<Connection> {
    const connection = await Connection.connect(this.#origin, this.#options.connectTimeout);
    connection.onIdle = (c) => this.#idle.push(c);
    connection.onGone = (c) => {
      const i = this.#idle.indexOf(c);
      if (i >= 0) this.#idle.splice(i, 1);
    };
    return connection;
  }

  sweep(now: number): void {
    // Oldest first: the stack's bottom has been idle longest.
    while (this.#idle.length > 0 && now - (this.#idle[0] as Connection).lastUsed > this.#options.idleTimeout) {
      (this.#idle.shift() as Connection).destroy();
    }
  }

  close(): void {
    for (const connection of this.#idle.splice(0)) connection.destroy();
  }
}

function originOf(backend: BackendView): Origin {
  const url = new URL(backend.url);
  return {
    hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: backend.port,
    tls: url.protocol === "https:",
  };
}

export class Http1Transport implements Transport {
  readonly name = "http1";
  readonly #options: Http1Options;
  readonly #pools = new Map<string, OriginPool>();
  readonly #sweeper: Timer;

  constructor(options: Http1Options) {
    this.#options = options;
    this.#sweeper = setInterval(() => {
      const now = performance.now();
      for (const pool of this.#pools.values()) pool.sweep(now);
    }, SWEEP_EVERY_MS);
    this.#sweeper.unref();
  }

  async send(backend: BackendView, request: UpstreamRequest): Promise<Response> {
    let pool = this.#pools.get(backend.url);
    if (!pool) this.#pools.set(backend.url, (pool = new OriginPool(originOf(backend), this.#options)));
    const replayable = !(request.body instanceof ReadableStream);
    const connection = await pool.acquire(replayable ? this.#options.idleTimeout : SAFE_REUSE_MS);
    try {
      return await connection.send(request);
    } catch (error) {
      const stale = connection.served > 1 && (error as { beforeResponse?: boolean }).beforeResponse === true;
      if (!stale || !replayable || request.cancel.cancelled) throw error;
      // The backend closed a kept-alive connection just as we used it: nothing was processed, try a fresh one.
      return (await pool.connect()).send(request);
    }
  }

  close(): void {
    clearInterval(this.#sweeper);
    for (const pool of this.#pools.values()) pool.close();
  }
}
