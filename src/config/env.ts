/**
 * Environment overrides, named as the original distributed balancer named them.
 */
import { numeric, type Override } from "./overrides.ts";

const ENV_KEYS: Readonly<Record<string, string>> = {
  PORT: "listen.port",
  REDIS_URL: "cluster.redis",
  WORKER_COUNT: "cluster.workers",
  HEALTH_CHECK_INTERVAL: "health.interval",
};

export function envOverrides(env: Readonly<Record<string, string | undefined>>): Override[] {
  const overrides: Override[] = [];
  for (const [name, path] of Object.entries(ENV_KEYS)) {
    const value = env[name];
    if (value === undefined || value === "") continue;
    overrides.push({ path, value: name === "REDIS_URL" ? value : numeric(value), origin: name });
  }
  return overrides;
}
