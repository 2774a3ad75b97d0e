import type { ResolvedConfig } from "./schema.ts";

/** Config that validates but does nothing here: said out loud at start, never pretended. */
export function notBuiltYet(config: ResolvedConfig): string[] {
  const warnings: string[] = [];
  if (config.proxy.retiredTransport) {
    warnings.push("proxy.transport no longer has an effect: the listen engine (the default) has its own HTTP/1.1 client, the serve engine uses fetch(); choose with proxy.engine");
  }
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
    "proxy.engine": config.proxy.engine,
    instances: config.instances === null ? "none" : "configured",
  };
}
