/**
 * A node joins its cluster's shared state (cluster.redis): who it is (host and
 * listen port), its Redis store, and the first sync, said in one log line.
 */
import { hostname } from "node:os";
import pkg from "../../package.json" with { type: "json" };
import type { ResolvedConfig } from "../config/schema.ts";
import type { Logger } from "../runtime/log.ts";
import type { Pool } from "../runtime/pool.ts";
import { SharedState } from "./shared-state.ts";
import { RedisStore } from "./store.ts";

export interface JoinOptions {
  readonly url: string;
  readonly config: ResolvedConfig;
  /** The port this node listens on (its id is host:port). */
  readonly port: number;
  readonly pool: Pool;
  readonly log: Logger;
  readonly drainMs: () => number;
}

export async function joinCluster({ url, config, port, pool, log, drainMs }: JoinOptions): Promise<SharedState> {
  const { name } = config.cluster;
  const shared = new SharedState({
    store: new RedisStore(url),
    name,
    self: { id: `${hostname()}:${port}`, host: hostname(), port, version: pkg.version, started: new Date().toISOString() },
    pool,
    log,
    drainMs,
    // A node's verdicts stay fresh for three probe intervals, at least 3 s.
    healthTtlMs: Math.max(3000, 3 * config.health.interval),
  });
  await shared.start();
  if (shared.available) log.info(`shared state: node ${shared.nodes[0]!.id} joined cluster "${name}" (${shared.nodes.length} node(s))`);
  return shared;
}
