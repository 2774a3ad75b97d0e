/**
 * One running balancer: the pool, the request path (proxy/traffic.ts), managed
 * instances and autoscaling, the scheduler, `Bun.serve`, and the operations an
 * operator triggers (reload, rolling restart, admin API, shutdown).
 */
import { ConfigError, formatIssue } from "./config/fields.ts";
import { fixedAtStart, notBuiltYet } from "./config/not-built.ts";
import type { ResolvedConfig } from "./config/schema.ts";
import { diffBackends } from "./decide/backend-diff.ts";
import { pathOf } from "./proxy/serve/request-checks.ts";
import { DEFAULT_RESTART_POLICY, type RestartPolicy } from "./decide/restart.ts";
import { type AdminTarget, createAdminActions, instanceControl } from "./admin-actions.ts";
import { createAdmin } from "./http/admin.ts";
import { createEndpoints } from "./http/endpoints.ts";
import { EventStreams } from "./http/events.ts";
import { statusBody, type EdgeFacts, type StatusFacts } from "./http/status.ts";
import { ClusterPrimary } from "./cluster/primary.ts";
import { ClusterWorker } from "./cluster/worker.ts";
import { Autoscaler, scalingPolicy } from "./runtime/autoscaler.ts";
import { ChildRegistry } from "./runtime/child-registry.ts";
import { ejectionTask, probeTask } from "./runtime/health-tasks.ts";
import { LoadSampler } from "./runtime/load-sampler.ts";
import type { Logger } from "./runtime/log.ts";
import { Pool } from "./runtime/pool.ts";
import { runScheduler } from "./runtime/scheduler.ts";
import { SeriesSampler, TrafficSeries } from "./runtime/series.ts";
import { Supervisor } from "./runtime/supervisor.ts";
import { buildTraffic, createRateLimiter, type Traffic } from "./proxy/traffic.ts";
import type { RateLimiter } from "./runtime/rate-limit.ts";
import type { OwnEndpoints } from "./proxy/listen/context.ts";
import { ListenEdge } from "./proxy/listen/edge.ts";
import { Upstreams } from "./proxy/listen/upstream.ts";
import { startServeEdge, type Edge } from "./proxy/serve/edge.ts";
import { addCounts, EDGE_COUNT_NAMES, edgeCounts, EdgeStats } from "./runtime/outcomes.ts";
import { SlotQueue } from "./proxy/queue.ts";
import { RetryBudget } from "./proxy/retry-budget.ts";
import { joinCluster } from "./shared-state/join.ts";
import { type SharedState, SYNC_EVERY_MS } from "./shared-state/shared-state.ts";

/** Idle upstream connections of the listen engine close after this (below common 5 s backend keep-alive timeouts). */
const UPSTREAM_IDLE_MS = 4000;

/**
 * This process's part: alone, the primary of a cluster (`cluster.workers` > 1;
 * it also starts the workers), or one of its workers (started by the primary).
 */
export type Role = { readonly kind: "solo" } | { readonly kind: "primary"; readonly workers: number } | { readonly kind: "worker"; readonly index: number; readonly port: number };

export interface BalancerOptions {
  /** Reads and validates the config again (SIGHUP, `POST /lb-admin/reload`). */
  readonly reloadConfig: () => Promise<ResolvedConfig>;
  /** State file recording managed instances' PIDs (see runtime/child-registry.ts). */
  readonly stateFile: string | null;
  readonly role: Role;
  /** A worker whose primary went away shuts down through this. */
  readonly onPrimaryGone: () => void;
}

export type ReloadResult = { ok: true; changes: string[] } | { ok: false; errors: string[] };

/** Shutdown drain bound when there are no managed instances to take `stopTimeout` from. */
const DEFAULT_DRAIN_MS = 10_000;

function restartPolicy(config: ResolvedConfig): RestartPolicy {
  return { ...DEFAULT_RESTART_POLICY, maxRestarts: config.instances?.maxRestarts ?? DEFAULT_RESTART_POLICY.maxRestarts };
}

export class Balancer {
  #config: ResolvedConfig;
  readonly #log: Logger;
  readonly #options: BalancerOptions;
  readonly pool: Pool;
  readonly #sampler: LoadSampler;
  /** The dashboard's last minutes: sampled here, or (a cluster worker) copied from the primary. */
  readonly #series = new TrafficSeries();
  readonly #seriesSampler: SeriesSampler | undefined;
  readonly #events: EventStreams;
  readonly supervisor: Supervisor | undefined;
  readonly autoscaler: Autoscaler | undefined;
  #traffic: Traffic;
  #limiter: RateLimiter | undefined;
  #edge: Edge | ListenEdge | undefined;
  /** The balancer's own endpoints when they share the listen port. */
  #own: OwnEndpoints | undefined;
  readonly #upstreams = new Upstreams(UPSTREAM_IDLE_MS);
  /** This process's edge counters (refusals, retries, bytes, open WebSockets) for /lb-metrics. */
  readonly stats = new EdgeStats();
  /** Requests waiting for a backend slot (backends with maxConnections). */
  readonly #queue: SlotQueue;
  readonly #retryBudget: RetryBudget;
  #adminServer: Bun.Server<undefined> | undefined;
  #scheduler = new AbortController();
  #draining = false;
  readonly #started = performance.now();
  readonly #role: Role;
  #primary: ClusterPrimary | undefined;
  #worker: ClusterWorker | undefined;
  /** Backends, admin changes and health shared with other nodes through Redis (cluster.redis). */
  #shared: SharedState | undefined;

  private constructor(config: ResolvedConfig, log: Logger, options: BalancerOptions) {
    this.#config = config;
    this.#log = log;
    this.#options = options;
    this.#role = options.role;
    this.pool = new Pool(config.health, config.cluster.workers, config.proxy.panicThreshold);
    this.#queue = new SlotQueue(config.proxy.queue);
    this.#retryBudget = new RetryBudget(config.proxy.queue);
    this.pool.onSlotFree = () => this.#queue.wakeOne();
    this.stats.queued = () => this.#queue.length;
    // Requests waiting for a slot count as load: a full queue is the clearest reason to scale up.
    this.#sampler = new LoadSampler(this.pool, config.scaling, () => this.#queue.length);
    if (this.#role.kind === "worker") {
      // A worker's pool follows the primary's snapshots: no backends, instances or autoscaling of its own.
      this.#worker = new ClusterWorker(this.#role.index, this.pool, this.#series, this.stats, { onReload: () => void this.reload(), onPrimaryGone: options.onPrimaryGone });
    } else for (const backend of config.backends) this.pool.addStatic(backend);
    if (config.instances && this.#role.kind !== "worker") {
      const registry = options.stateFile ? new ChildRegistry(options.stateFile, log) : undefined;
      this.supervisor = new Supervisor({ instances: config.instances, health: config.health, pool: this.pool, log, registry, restartPolicy: restartPolicy(config) });
      this.autoscaler = new Autoscaler(this.supervisor, this.#sampler, scalingPolicy(config.instances, config.scaling), config.scaling.checkInterval, log);
    }
    if (!this.#worker) this.#seriesSampler = new SeriesSampler(this.pool, this.#series, () => this.supervisor?.desired ?? 0);
    const worker = this.#worker;
    this.#events = new EventStreams({ series: this.#series, status: () => (worker ? worker.status : statusBody(this.status())) });
    this.#limiter = createRateLimiter(config, log);
    this.#traffic = this.#buildTraffic(config);
  }

  static async start(config: ResolvedConfig, log: Logger, options: BalancerOptions): Promise<Balancer> {
    const balancer = new Balancer(config, log, options);
    await balancer.#start();
    return balancer;
  }

  get config(): ResolvedConfig {
    return this.#config;
  }

  get port(): number {
    return this.#edge?.port ?? this.#config.listen.port;
  }

  #buildTraffic(config: ResolvedConfig): Traffic {
    const { autoscaler } = this;
    const worker = this.#worker;
    const coldStart = worker && config.instances ? () => worker.coldStart() : autoscaler ? () => autoscaler.coldStart() : undefined;
    return buildTraffic(config, this.pool, this.#log, {
      coldStart,
      limiter: this.#limiter,
      upstreams: this.#upstreams,
      own: this.#own,
      stats: this.stats,
      queue: this.#queue,
      retryBudget: this.#retryBudget,
    });
  }

  async #start(): Promise<void> {
    const { listen, instances, proxy, admin } = this.#config;
    if (this.supervisor && instances) {
      this.#log.info(`starting ${instances.min} instance(s): ${instances.command.join(" ")}`);
      await this.supervisor.start();
    }
    const worker = this.#worker;
    const endpoints = createEndpoints({
      status: () => worker?.status ?? statusBody(this.status()),
      draining: () => this.#draining,
      events: (req) => this.#events.open(req),
    });
    const adminApi = worker ? (req: Request, path: string) => worker.admin(req, path) : createAdmin(admin.token, createAdminActions(this.#adminTarget(), this.#log));
    const serveOwn = (req: Request, path: string) => (path.startsWith("/lb-admin/") ? adminApi(req, path) : endpoints(req, path));
    this.#own = admin.port === null ? serveOwn : undefined;
    this.#traffic.close();
    this.#traffic = this.#buildTraffic(this.#config);
    const role = this.#role;
    const bind = {
      // Workers bind the primary's port (it may have been 0: "any free port").
      port: role.kind === "worker" ? role.port : listen.port,
      hostname: listen.hostname,
      tls: listen.tls,
      reusePort: role.kind !== "solo",
    };
    this.#edge =
      proxy.engine === "listen"
        ? new ListenEdge({ ...bind, context: () => this.#traffic.listen, stats: this.stats })
        : startServeEdge({ ...bind, idleTimeout: proxy.idleTimeout, maxBodySize: proxy.maxBodySize, traffic: () => this.#traffic, own: this.#own, log: this.#log, stats: this.stats });
    if (admin.port !== null && role.kind !== "worker") {
      this.#adminServer = Bun.serve({
        port: admin.port,
        hostname: listen.hostname,
        fetch: async (req) => (await serveOwn(req, pathOf(req.url))) ?? Response.json({ error: "not found" }, { status: 404 }),
      });
    }
    const redis = this.#config.cluster.redis;
    if (redis && role.kind !== "worker") {
      const drainMs = () => this.#config.instances?.stopTimeout ?? DEFAULT_DRAIN_MS;
      this.#shared = await joinCluster({ url: redis, config: this.#config, port: this.port, pool: this.pool, log: this.#log, drainMs });
    }
    this.#startScheduler();
    if (role.kind === "worker") return this.#log.info(`worker ${role.index} serving on port ${this.port}`);
    if (role.kind === "primary") {
      this.#primary = new ClusterPrimary(role.workers, this.port, {
        pool: this.pool,
        series: this.#series,
        status: () => statusBody(this.status()),
        admin: (req, path) => adminApi(req, path),
        coldStart: () => this.autoscaler?.coldStart() ?? Promise.resolve(false),
      }, this.#log);
    }

    this.#log.info(`Load balancer running on port ${this.port}${role.kind === "primary" ? ` (${role.workers} processes)` : ""}`);
    if (this.#adminServer) this.#log.info(`Status and admin endpoints on port ${this.#adminServer.port}`);
    const statics = this.pool.backends.filter((b) => !b.managed);
    if (statics.length > 0) this.#log.info(`Backend servers: ${statics.map((b) => b.url).join(", ")}`);
    this.#log.info(`Health checker started (checking every ${this.#config.health.interval / 1000}s)`);
    this.#log.info(`Strategy: ${this.#traffic.strategy.name}`);
    this.#log.info(proxy.engine === "listen" ? "Engine: listen (Bun.listen edge, pooled HTTP/1.1 upstreams)" : "Engine: serve (Bun.serve + fetch())");
    for (const warning of notBuiltYet(this.#config)) this.#log.warn(warning);
  }

  /** What the admin routes may do, and nothing else of the balancer. */
  #adminTarget(): AdminTarget {
    const balancer = this;
    return {
      pool: this.pool,
      // Started after the admin routes exist: read when a change comes.
      get shared() {
        return balancer.#shared;
      },
      drainMs: () => this.#config.instances?.stopTimeout ?? DEFAULT_DRAIN_MS,
      reload: () => this.reload(),
      instances: () => (this.supervisor && this.autoscaler ? instanceControl(this.supervisor, this.autoscaler) : undefined),
    };
  }

  #startScheduler(): void {
    this.#scheduler.abort();
    this.#scheduler = new AbortController();
    // Workers only end their own passive ejections; the primary probes, samples and scales for all.
    const tasks = this.#worker ? [ejectionTask(this.pool, this.#log)] : [probeTask(this.pool, this.#config.health, this.#log), ejectionTask(this.pool, this.#log), this.#sampler.task()];
    if (this.autoscaler) tasks.push(this.autoscaler.task());
    if (this.#seriesSampler) tasks.push(this.#seriesSampler.task());
    const shared = this.#shared;
    if (shared) tasks.push({ name: "shared state", every: SYNC_EVERY_MS, run: () => shared.sync() });
    runScheduler(tasks, this.#log, this.#scheduler.signal);
  }

  status(): StatusFacts {
    const scaling = this.autoscaler?.status() ?? { min: 0, max: 0, desired: 0, load: 0, lastAction: null };
    const primary = this.#primary;
    return {
      backends: primary ? primary.hostBackends() : this.pool.backends.map((b) => ({ ...b, circuit: b.outlier.circuit })),
      edge: this.#edgeFacts(),
      strategy: this.#traffic.strategy.name,
      uptime: (performance.now() - this.#started) / 1000,
      draining: this.#draining,
      scaling,
      workers: primary ? [{ index: 0, pid: process.pid, totalRequests: this.pool.backends.reduce((n, b) => n + b.totalRequests, 0) }, ...primary.workers()] : undefined,
      nodes: this.#shared?.nodes,
    };
  }

  /** This process's edge counters, plus the workers' in a cluster's primary. */
  #edgeFacts(): EdgeFacts {
    const own = edgeCounts(this.stats);
    const remote = this.#primary?.edge();
    const counts = remote ? addCounts(own, remote.counts) : own;
    const connections = this.stats.connections();
    const facts = Object.fromEntries(EDGE_COUNT_NAMES.map((name, i) => [name, counts[i] ?? 0])) as Record<(typeof EDGE_COUNT_NAMES)[number], number>;
    return {
      ...facts,
      connections: connections === null && remote?.connections == null ? null : (connections ?? 0) + (remote?.connections ?? 0),
      webSockets: this.stats.openWebSockets + (remote?.webSockets ?? 0),
      queued: this.#queue.length + (remote?.queued ?? 0),
    };
  }

  /** Re-reads the config and applies what can change while running. An invalid config changes nothing. */
  async reload(): Promise<ReloadResult> {
    let next: ResolvedConfig;
    try {
      next = await this.#options.reloadConfig();
    } catch (error) {
      const errors = error instanceof ConfigError ? error.issues.map(formatIssue) : [String(error)];
      for (const line of errors) this.#log.error(`reload refused: ${line}`);
      return { ok: false, errors };
    }
    const prev = this.#config;
    const changes: string[] = [];
    const [before, after] = [fixedAtStart(prev), fixedAtStart(next)];
    for (const key of Object.keys(before) as (keyof typeof before)[]) {
      if (!Bun.deepEquals(before[key], after[key])) this.#log.warn(`${key} changed: restart Fulcrum to apply that part`);
    }

    // A worker's backends follow the primary's snapshots, not the file; with shared state, the registry
    // does (the file resets it, on every node); while Redis is away the file applies here only.
    const shared = this.#shared;
    const viaRegistry = shared !== undefined && (await shared.reset(next.backends).then(() => true, () => false));
    if (shared && viaRegistry) changes.push("shared registry reset to the file's backends");
    else if (shared) this.#log.warn("reload: the shared registry is unavailable; the file's backends apply on this node only");
    const statics = this.#worker || viaRegistry ? [] : this.pool.backends.filter((b) => !b.managed);
    const diff = this.#worker || viaRegistry ? { added: [], removed: [], reweighted: [] } : diffBackends(statics, next.backends);
    for (const backend of diff.added) {
      this.pool.addStatic(backend);
      changes.push(`added ${backend.url}`);
    }
    for (const { url, weight } of diff.reweighted) {
      const member = statics.find((b) => b.url === url);
      if (member) this.pool.setWeight(member, weight);
      changes.push(`${url} weight ${weight}`);
    }
    for (const url of diff.removed) {
      const member = statics.find((b) => b.url === url);
      if (member) void this.pool.drain(member, next.instances?.stopTimeout ?? DEFAULT_DRAIN_MS).then(() => this.pool.remove(member));
      changes.push(`removing ${url}`);
    }

    if (this.supervisor && this.autoscaler && prev.instances && next.instances) {
      const program = (c: ResolvedConfig) => [c.instances?.command, c.instances?.cwd, c.instances?.env];
      this.supervisor.update(next.instances, next.health, restartPolicy(next));
      this.autoscaler.update(scalingPolicy(next.instances, next.scaling), next.scaling.checkInterval);
      if (!Bun.deepEquals(program(prev), program(next))) {
        changes.push("instance command changed: rolling restart");
        void this.supervisor.rollingRestart();
      }
    }
    this.pool.setHealthConfig(next.health, next.proxy.panicThreshold);
    this.#log.configure(next.log);
    const sampled = (c: ResolvedConfig) => [c.scaling.stableWindow, c.scaling.panicWindow, c.scaling.scaleDownThreshold, c.scaling.idleTimeout];
    if (!Bun.deepEquals(sampled(prev), sampled(next))) this.#sampler.resize(next.scaling);
    this.#config = next;
    if (!Bun.deepEquals(prev.rateLimit, next.rateLimit) || prev.cluster.redis !== next.cluster.redis) {
      this.#limiter?.close();
      this.#limiter = createRateLimiter(next, this.#log);
    }
    this.#queue.configure(next.proxy.queue);
    this.#retryBudget.configure(next.proxy.queue);
    this.#traffic.close();
    this.#traffic = this.#buildTraffic(next);
    this.#startScheduler();
    this.#primary?.reload();
    this.#log.info(`config reloaded${changes.length ? `: ${changes.join("; ")}` : ""}`);
    return { ok: true, changes };
  }

  /** Graceful: stop accepting, finish in-flight requests (bounded), stop instances. */
  async stop(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    this.#log.info("shutting down: no new connections, finishing in-flight requests");
    // Dashboard streams never finish on their own: end them now, or they would hold the drain below.
    this.#events.close();
    const workersStopped = this.#primary?.stop(this.#config.instances?.stopTimeout ?? DEFAULT_DRAIN_MS);
    this.#worker?.stop();
    const edge = this.#edge;
    if (edge) {
      const cut = await edge.stop(this.#config.instances?.stopTimeout ?? DEFAULT_DRAIN_MS);
      if (cut > 0) this.#log.warn(`drain deadline passed with ${cut} request(s) in flight; closed them`);
    }
    await workersStopped;
    this.#queue.close();
    this.#retryBudget.close();
    this.#adminServer?.stop(true);
    this.#upstreams.close();
    this.#limiter?.close();
    this.#traffic.close();
    this.#scheduler.abort();
    await this.#shared?.stop();
    await this.supervisor?.stopAll();
    this.#log.info("stopped");
    this.#log.flush();
  }

  /** Last resort on a crash: kill managed instances synchronously. */
  killInstances(): void {
    this.#primary?.killAll();
    this.supervisor?.killAll();
  }
}
