/**
 * Wires one balancer from a resolved config: pool, strategy, supervisor,
 * proxy, WebSocket relay, endpoints, the scheduler, and `Bun.serve`.
 */
import { cidrContains, parseCidr, parseIp } from "./config/cidr.ts";
import type { ResolvedConfig } from "./config/schema.ts";
import { believedClientIp } from "./decide/headers.ts";
import { createEndpoints, isReservedPath } from "./http/endpoints.ts";
import type { StatusFacts } from "./http/status.ts";
import { ejectionTask, loadSamplingTask, probeTask } from "./runtime/health-tasks.ts";
import type { Logger } from "./runtime/log.ts";
import { Pool } from "./runtime/pool.ts";
import { createProxy } from "./runtime/proxy.ts";
import { runScheduler } from "./runtime/scheduler.ts";
import { Supervisor } from "./runtime/supervisor.ts";
import { createWebSocketProxy, isWebSocketUpgrade, type WsData } from "./runtime/websocket.ts";
import { createStrategy } from "./strategies/index.ts";

export interface Balancer {
  readonly port: number;
  readonly adminPort: number | null;
  /** Graceful: stop accepting, finish in-flight requests (bounded), stop instances. */
  stop(): Promise<void>;
  /** Last resort on a crash: kill managed instances synchronously. */
  killInstances(): void;
}

const DEFAULT_DRAIN_MS = 10_000;

export async function startBalancer(config: ResolvedConfig, log: Logger): Promise<Balancer> {
  const started = performance.now();
  const pool = new Pool(config.health);
  for (const backend of config.backends) pool.addStatic(backend);
  const strategy = createStrategy(config.strategy);
  const supervisor = config.instances ? new Supervisor(config.instances, config.health, pool, log) : undefined;
  let draining = false;

  const isTrusted = trustMatcher(config.proxy.trustProxy);
  const clientIp = (peerIp: string, req: Request) =>
    config.proxy.trustProxy === false ? peerIp : believedClientIp(peerIp, req.headers.get("x-forwarded-for"), isTrusted);
  const tls = config.listen.tls !== null;

  const proxy = createProxy({
    pool,
    strategy,
    proxy: config.proxy,
    retryAfterSeconds: Math.max(1, Math.ceil(config.health.interval / 1000)),
    log,
    tls,
    isTrusted,
    clientIp,
  });
  const ws = createWebSocketProxy({
    pool,
    strategy,
    connectTimeout: config.proxy.connectTimeout,
    preserveHost: config.proxy.preserveHost,
    tls,
    log,
    isTrusted,
    trustProxy: config.proxy.trustProxy !== false,
    clientIp,
  });
  const facts = (): StatusFacts => ({
    backends: pool.backends,
    strategy: strategy.name,
    uptime: (performance.now() - started) / 1000,
    draining,
    scaling: {
      min: config.instances?.min ?? 0,
      max: config.instances?.max ?? 0,
      desired: supervisor?.desired ?? 0,
      lastAction: null,
    },
  });
  const endpoints = createEndpoints(facts);
  const endpointsOnListenPort = config.admin.port === null;

  if (supervisor) {
    log.info(`starting ${config.instances?.min} instance(s): ${config.instances?.command.join(" ")}`);
    await supervisor.start();
  }

  const server = Bun.serve<WsData>({
    port: config.listen.port,
    hostname: config.listen.hostname,
    tls: config.listen.tls ? { cert: Bun.file(config.listen.tls.cert), key: Bun.file(config.listen.tls.key) } : undefined,
    reusePort: config.cluster.workers > 1,
    // Bun caps idleTimeout at 255 s (oven-sh/bun#15589); 0 would disable it.
    idleTimeout: Math.min(255, Math.max(1, Math.ceil(config.proxy.idleTimeout / 1000))),
    // Lift Bun's 128 MiB default: our own limit applies, Bun answers 413 above it.
    maxRequestBodySize: Math.max(1, config.proxy.maxBodySize),
    fetch(req, srv) {
      const peerIp = srv.requestIP(req)?.address ?? "";
      if (endpointsOnListenPort) {
        const url = req.url;
        const path = url.slice(url.indexOf("/", url.indexOf("//") + 2));
        if (isReservedPath(path)) {
          const response = endpoints(req, path);
          if (response) return response;
        }
      }
      if (isWebSocketUpgrade(req)) return ws.upgrade(req, srv, peerIp);
      return proxy(req, peerIp);
    },
    websocket: ws.handlers,
    error(error) {
      log.error(`request failed: ${error.message}`);
      return new Response("500 Internal Server Error\n", { status: 500 });
    },
  });

  const admin =
    config.admin.port === null
      ? undefined
      : Bun.serve({
          port: config.admin.port,
          hostname: config.listen.hostname,
          fetch(req) {
            const url = req.url;
            const path = url.slice(url.indexOf("/", url.indexOf("//") + 2));
            return endpoints(req, path) ?? new Response("404 Not Found\n", { status: 404 });
          },
        });

  const stopScheduler = new AbortController();
  runScheduler(
    [probeTask(pool, config.health, log), ejectionTask(pool, log), loadSamplingTask(pool, config.scaling.checkInterval)],
    log,
    stopScheduler.signal,
  );

  const port = server.port ?? config.listen.port;
  log.info(`Load balancer running on port ${port}`);
  if (admin) log.info(`Status endpoints on port ${admin.port}`);
  if (pool.backends.length > 0) log.info(`Backend servers: ${pool.backends.map((b) => b.url).join(", ")}`);
  log.info(`Health checker started (checking every ${config.health.interval / 1000}s)`);
  log.info(`Strategy: ${strategy.name}`);
  for (const warning of notBuiltYet(config)) log.warn(warning);

  return {
    port,
    adminPort: admin?.port ?? null,
    async stop() {
      if (draining) return;
      draining = true;
      log.info("shutting down: no new connections, finishing in-flight requests");
      void server.stop(false);
      const deadline = performance.now() + (config.instances?.stopTimeout ?? DEFAULT_DRAIN_MS);
      while ((server.pendingRequests > 0 || server.pendingWebSockets > 0) && performance.now() < deadline) await Bun.sleep(25);
      if (server.pendingRequests > 0 || server.pendingWebSockets > 0) {
        log.warn(`drain deadline passed with ${server.pendingRequests} request(s) in flight; closing them`);
      }
      await server.stop(true);
      admin?.stop(true);
      stopScheduler.abort();
      await supervisor?.stopAll();
      log.info("stopped");
      log.flush();
    },
    killInstances() {
      supervisor?.killAll();
    },
  };
}

/** Config that validates but does nothing yet: say so loudly rather than pretend. */
function notBuiltYet(config: ResolvedConfig): string[] {
  const warnings: string[] = [];
  if (config.instances && config.instances.max > config.instances.min) {
    warnings.push(`autoscaling is not built yet: running instances.min (${config.instances.min}) instances, never more`);
  }
  if (config.rateLimit) warnings.push("rateLimit is not built yet: requests are NOT rate limited");
  if (config.cluster.workers > 1) warnings.push(`cluster.workers is not built yet: running 1 process, not ${config.cluster.workers}`);
  if (config.cluster.redis) warnings.push("cluster.redis is not built yet: no state is shared through Redis");
  if (config.admin.token) warnings.push("admin.token is set but /lb-admin is not built yet");
  return warnings;
}

function trustMatcher(trust: boolean | readonly string[]): (ip: string) => boolean {
  if (typeof trust === "boolean") return () => trust;
  const ranges = trust.map((c) => parseCidr(c)).filter((c) => c !== undefined);
  return (ip) => {
    const bytes = parseIp(ip);
    return bytes !== undefined && ranges.some((range) => cidrContains(range, bytes));
  };
}
