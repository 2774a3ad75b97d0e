import type { ResolvedConfig } from "./schema.ts";

/** Config that validates but does nothing yet: said out loud at start, never pretended. */
export function notBuiltYet(config: ResolvedConfig): string[] {
  const warnings: string[] = [];
  if (config.rateLimit) warnings.push("rateLimit is not built yet: requests are NOT rate limited");
  if (config.cluster.redis) warnings.push("cluster.redis is not built yet: no state is shared through Redis");
  return warnings;
}

/** Settings a running balancer cannot change; a reload that changes them says "restart to apply". */
export function fixedAtStart(config: ResolvedConfig) {
  return {
    listen: config.listen,
    "admin.port": config.admin.port,
    cluster: config.cluster,
    "proxy.idleTimeout": config.proxy.idleTimeout,
    "proxy.maxBodySize": config.proxy.maxBodySize,
    instances: config.instances === null ? "none" : "configured",
  };
}
