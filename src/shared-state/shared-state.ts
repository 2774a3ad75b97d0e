/**
 * Several Fulcrum nodes, one pool (`cluster.redis`): the static backends and
 * their admin changes live in Redis under `fulcrum:<cluster.name>:`, each node
 * heartbeats its presence and publishes its view of every backend's health,
 * and follows the others' (decide/peers.ts has the rules).
 *
 *   backends        hash: url → {weight, maxConnections, drained}; the registry
 *   seeded          set by the first node: from then on the registry, not a
 *                   starting node's file, is the truth (a reload resets it). A
 *                   Redis that lost its data (restarted without persistence)
 *                   has no marker: the first node to notice seeds it again
 *                   from what it serves, so nothing is removed anywhere
 *   changes         pub/sub channel: "backends" after every registry write
 *   node:<id>       this node's heartbeat, with a TTL: gone within NODE_TTL_MS of a crash
 *   health:<id>     hash: url → "up" | "down", this node's verdicts, with a TTL
 *
 * Managed instances stay local: each node supervises and routes to its own;
 * peers only see them listed in its heartbeat. When Redis is away, every node
 * keeps serving on its last known state, says so once, refuses admin changes
 * (SharedStateUnavailable → 503) and resynchronises when Redis answers again.
 */
import type { ResolvedBackend } from "../config/schema.ts";
import { decodeEntries, downByPeers, encodeEntry, planRegistry, type RegistryEntry } from "../decide/peers.ts";
import { parseBackendUrl } from "../config/backends.ts";
import type { Logger } from "../runtime/log.ts";
import type { Pool } from "../runtime/pool.ts";
import type { SharedStore } from "./store.ts";

/** How often a node heartbeats, publishes its health view and syncs (also on every published change). */
export const SYNC_EVERY_MS = 500;
/** A node that stops heartbeating disappears from `nodes` within this long. */
export const NODE_TTL_MS = 3000;

export interface NodeInfo {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly version: string;
  /** ISO times. */
  readonly started: string;
  readonly lastSeen: string;
  /** This node's managed instances (peers never route to them). */
  readonly instances: readonly { readonly id: string; readonly url: string; readonly state: string }[];
}

export class SharedStateUnavailable extends Error {}

export interface SharedStateOptions {
  readonly store: SharedStore;
  readonly name: string;
  readonly self: Omit<NodeInfo, "lastSeen" | "instances">;
  readonly pool: Pool;
  readonly log: Logger;
  /** How long a removed backend may drain before it goes. */
  readonly drainMs: () => number;
  /** Wall clock (ms since the epoch). */
  readonly now?: () => number;
  /** How long this node's health reports stay fresh (3 probe intervals). */
  readonly healthTtlMs: number;
}

export class SharedState {
  readonly #o: SharedStateOptions;
  readonly #prefix: string;
  readonly #now: () => number;
  #available = false;
  /** Said once per outage: the first failure and the recovery. */
  #warned = false;
  #nodes: NodeInfo[] = [];
  readonly #drainedByRegistry = new Set<string>();
  readonly #removing = new Set<string>();
  #syncing: Promise<void> | undefined;

  constructor(options: SharedStateOptions) {
    this.#o = options;
    this.#prefix = `fulcrum:${options.name}:`;
    this.#now = options.now ?? Date.now;
  }

  /** Every node, this one first (fresh heartbeats only; this one always). */
  get nodes(): readonly NodeInfo[] {
    return this.#nodes;
  }

  get available(): boolean {
    return this.#available;
  }

  /** Subscribes to changes and syncs once (seeding the registry from the config if no node has yet). */
  async start(): Promise<void> {
    this.#nodes = [this.#selfInfo()];
    this.#o.store.subscribe(`${this.#prefix}changes`, () => void this.sync()).catch(() => {});
    await this.sync();
  }

  /** No registry yet (the first node, or Redis lost its data): this node's static backends become it. */
  async #seedIfEmpty(): Promise<void> {
    if (!(await this.#o.store.setNx(`${this.#prefix}seeded`, new Date(this.#now()).toISOString()))) return;
    const statics = this.#o.pool.backends.filter((b) => !b.managed && !this.#removing.has(b.url));
    const entries = statics.map((b) => ({ url: b.url, weight: b.weight, maxConnections: b.maxConnections, drained: this.#drainedByRegistry.has(b.url) }));
    await this.#writeRegistry(entries);
    this.#o.log.info(`shared state: registry "${this.#o.name}" seeded from this node's ${entries.length} backend(s)`);
  }

  /** One round: heartbeat, own health out, peers' health in, registry applied. Never rejects. */
  sync(): Promise<void> {
    this.#syncing ??= this.#round().finally(() => {
      this.#syncing = undefined;
    });
    return this.#syncing;
  }

  async #round(): Promise<void> {
    const { store, pool } = this.#o;
    try {
      await this.#seedIfEmpty();
      const self = this.#selfInfo();
      await store.setPx(`${this.#prefix}node:${self.id}`, JSON.stringify(self), NODE_TTL_MS);
      const verdicts: Record<string, string> = {};
      for (const m of pool.backends) if (!m.managed) verdicts[m.url] = m.state === "unhealthy" || m.outlier.circuit === "open" ? "down" : "up";
      const healthKey = `${this.#prefix}health:${self.id}`;
      await store.hset(healthKey, verdicts);
      await store.pexpire(healthKey, this.#o.healthTtlMs);

      const nodeKeys = (await store.keys(`${this.#prefix}node:*`)).filter((k) => k !== `${this.#prefix}node:${self.id}`).sort();
      const peers = (await store.mget(nodeKeys)).flatMap((text) => (text ? [JSON.parse(text) as NodeInfo] : []));
      const reports = await Promise.all(peers.map((p) => store.hgetall(`${this.#prefix}health:${p.id}`)));
      const entries = decodeEntries(await store.hgetall(`${this.#prefix}backends`));
      this.#nodes = [self, ...peers];
      this.#applyPeers(reports);
      this.#applyRegistry(entries);
      if (this.#warned) this.#o.log.info(`shared state: Redis is back: resynchronised (${entries.length} backends, ${this.#nodes.length} nodes)`);
      this.#warned = false;
      this.#available = true;
    } catch (error) {
      this.#degraded(error);
    }
  }

  #degraded(error: unknown): void {
    this.#available = false;
    this.#nodes = [this.#selfInfo(), ...this.#nodes.slice(1)];
    if (this.#warned) return;
    this.#warned = true;
    this.#o.log.warn(`shared state: Redis unavailable (${(error as Error).message ?? error}): serving on the last known backends and health; admin changes are refused until it is back`);
  }

  #applyPeers(reports: readonly Record<string, string>[]): void {
    for (const member of this.#o.pool.backends) {
      if (member.managed) continue;
      let reporting = 0;
      let down = 0;
      for (const report of reports) {
        const verdict = report[member.url];
        if (verdict === undefined) continue;
        reporting++;
        if (verdict === "down") down++;
      }
      this.#o.pool.setPeerDown(member, downByPeers(down, reporting));
    }
  }

  #applyRegistry(entries: readonly RegistryEntry[]): void {
    const { pool, log } = this.#o;
    const statics = pool.backends.filter((b) => !b.managed && !this.#removing.has(b.url));
    const plan = planRegistry(
      statics.map((b) => ({ url: b.url, weight: b.weight, draining: b.state === "draining", drainedByRegistry: this.#drainedByRegistry.has(b.url) })),
      entries,
    );
    const byUrl = (url: string) => statics.find((b) => b.url === url);
    for (const entry of plan.add) {
      const parsed = parseBackendUrl(entry.url);
      if (typeof parsed === "string") continue;
      pool.addStatic({ ...parsed, weight: entry.weight, maxConnections: entry.maxConnections });
      log.info(`shared state: added backend ${entry.url}`);
    }
    for (const { url, weight } of plan.reweight) pool.setWeight(byUrl(url)!, weight);
    for (const url of plan.drain) {
      pool.setState(byUrl(url)!, "draining");
      this.#drainedByRegistry.add(url);
      log.info(`shared state: draining backend ${url}`);
    }
    for (const url of plan.undrain) {
      pool.setState(byUrl(url)!, "healthy");
      this.#drainedByRegistry.delete(url);
    }
    for (const url of plan.remove) {
      const member = byUrl(url)!;
      this.#removing.add(url);
      this.#drainedByRegistry.delete(url);
      log.info(`shared state: removing backend ${url} (draining first)`);
      void pool.drain(member, this.#o.drainMs()).then(() => {
        pool.remove(member);
        this.#removing.delete(url);
      });
    }
  }

  #selfInfo(): NodeInfo {
    const instances = this.#o.pool.backends.filter((b) => b.managed).map((b) => ({ id: b.id, url: b.url, state: b.state }));
    return { ...this.#o.self, lastSeen: new Date(this.#now()).toISOString(), instances };
  }

  async #writeRegistry(entries: readonly RegistryEntry[]): Promise<void> {
    const key = `${this.#prefix}backends`;
    const current = Object.keys(await this.#o.store.hgetall(key));
    // Written before the extras are deleted: a reader never sees an empty registry in between.
    await this.#o.store.hset(key, Object.fromEntries(entries.map((e) => [e.url, encodeEntry(e)])));
    await this.#o.store.hdel(key, current.filter((url) => !entries.some((e) => e.url === url)));
    await this.#o.store.publish(`${this.#prefix}changes`, "backends");
  }

  /** Changes through `/lb-admin` go to the registry; every node (this one too) applies them from there. */
  async change(update: (entries: RegistryEntry[]) => RegistryEntry[]): Promise<void> {
    if (!this.#available) throw new SharedStateUnavailable("shared state (Redis) unavailable: admin changes are refused until it is back");
    try {
      const entries = decodeEntries(await this.#o.store.hgetall(`${this.#prefix}backends`));
      await this.#writeRegistry(update(entries));
    } catch (error) {
      this.#degraded(error);
      throw new SharedStateUnavailable(`shared state (Redis) unavailable: ${(error as Error).message}`);
    }
    await this.sync();
  }

  /** A config reload: the file is the truth again, on every node. */
  async reset(configBackends: readonly ResolvedBackend[]): Promise<void> {
    await this.change(() => configBackends.map((b) => ({ url: b.url, weight: b.weight, maxConnections: b.maxConnections, drained: false })));
  }

  /** Leaves at once on a clean stop (a crash leaves within NODE_TTL_MS). */
  async stop(): Promise<void> {
    const id = this.#o.self.id;
    await Promise.allSettled([this.#o.store.setPx(`${this.#prefix}node:${id}`, "", 1), this.#o.store.pexpire(`${this.#prefix}health:${id}`, 1)]);
    this.#o.store.close();
  }
}

