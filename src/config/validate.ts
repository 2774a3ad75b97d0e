/**
 * Raw config (any object a config file produced) → `ResolvedConfig`, with every
 * default filled in, or a `ConfigError` listing every problem. Runs once, at load.
 * Defaults here must match the `@default` tags in schema.ts (a unit test checks).
 */
import { readBackends } from "./backends.ts";
import { parseCidr } from "./cidr.ts";
import { ConfigError, Fields, isPlainObject, show, type ConfigIssue } from "./fields.ts";
import {
  LOG_LEVELS,
  STRATEGY_NAMES,
  type KeySource,
  type ResolvedConfig,
  type ResolvedInstances,
  type StrategyName,
  type StrategySpec,
} from "./schema.ts";
import { isAbsolute, resolve } from "node:path";

export interface ValidateOptions {
  /** Directory relative paths in the config are resolved against. */
  readonly baseDir: string;
  /** The `bun` executable managed `location` entries are run with. */
  readonly bunPath: string;
  /** Where a value came from when not the file ("PORT", "--port"), by path. */
  readonly origins?: ReadonlyMap<string, string>;
}

const KEY_SOURCE = /^(ip|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$/;
const keySourceProblem = (s: string) => (KEY_SOURCE.test(s) ? undefined : `must be "ip" or "header:<Name>"`);

export function validateConfig(raw: unknown, options: ValidateOptions): ResolvedConfig {
  const issues: ConfigIssue[] = [];
  if (!isPlainObject(raw)) throw new ConfigError([{ path: "", message: `config must be an object, got ${show(raw)}` }]);
  const root = new Fields(raw, "", issues);

  const listen = root.section("listen");
  const tlsFields = listen.object("tls");
  const config: ResolvedConfig = {
    listen: {
      port: listen.number("port", 4000, { integer: true, min: 0, max: 65535 }),
      hostname: listen.string("hostname", "0.0.0.0"),
      tls: tlsFields ? { cert: tlsFields.string("cert", ""), key: tlsFields.string("key", "") } : null,
    },
    backends: readBackends(root, issues),
    instances: readInstances(root, options),
    strategy: readStrategy(root),
    health: readHealth(root),
    scaling: readScaling(root),
    proxy: readProxy(root),
    rateLimit: readRateLimit(root),
    admin: readAdmin(root),
    cluster: readCluster(root),
    log: readLog(root),
  };
  if (tlsFields) {
    for (const key of ["cert", "key"] as const) if (!tlsFields.has(key)) tlsFields.fail(key, "is required (a path to a PEM file)");
    tlsFields.rejectUnknown();
  }
  listen.rejectUnknown();
  root.rejectUnknown();
  checkAcrossSections(config, issues, Array.isArray(raw.backends) && raw.backends.length > 0);

  if (issues.length > 0) throw new ConfigError(withOrigins(issues, options.origins));
  return config;
}

function withOrigins(issues: ConfigIssue[], origins: ReadonlyMap<string, string> | undefined): ConfigIssue[] {
  if (!origins) return issues;
  return issues.map((issue) => {
    const origin = origins.get(issue.path) ?? origins.get(issue.path.replace(/\[\d+\]$/, ""));
    return origin ? { ...issue, path: `${issue.path} (from ${origin})` } : issue;
  });
}

function checkAcrossSections(config: ResolvedConfig, issues: ConfigIssue[], backendsGiven: boolean): void {
  const { instances, scaling, admin, listen, rateLimit, cluster } = config;
  if (rateLimit?.store === "redis" && !cluster.redis) {
    issues.push({ path: "rateLimit.store", message: `"redis" needs a Redis URL in cluster.redis (or REDIS_URL), got none` });
  }
  if (instances && instances.min > instances.max) {
    issues.push({ path: "instances.min", message: `must be <= instances.max (${instances.max}), got ${instances.min}` });
  }
  if (scaling.scaleDownThreshold >= scaling.scaleUpThreshold) {
    issues.push({
      path: "scaling.scaleDownThreshold",
      message: `must be < scaling.scaleUpThreshold (${scaling.scaleUpThreshold}), got ${scaling.scaleDownThreshold}`,
    });
  }
  if (scaling.panicWindow > scaling.stableWindow) {
    issues.push({ path: "scaling.panicWindow", message: `must be <= scaling.stableWindow (${scaling.stableWindow}), got ${scaling.panicWindow}` });
  }
  if (admin.port !== null && admin.port === listen.port && listen.port !== 0) {
    issues.push({ path: "admin.port", message: `must differ from listen.port (leave it unset to share the port), got ${admin.port}` });
  }
  if (!backendsGiven && !instances) {
    issues.push({ path: "", message: "nothing to balance: set `backends` or `instances` in the config, or pass --backend URL" });
  }
}

function readInstances(root: Fields, options: ValidateOptions): ResolvedInstances | null {
  const f = root.object("instances");
  if (!f) return null;
  const location = f.optionalString("location");
  let command: string[] = [];
  if (f.has("command")) {
    const v = f.raw("command");
    if (Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === "string" && s !== "")) command = v;
    else f.fail("command", `must be a non-empty list of strings (argv), got ${show(v)}`);
  }
  if (location && command.length > 0) f.fail("command", "set either instances.location or instances.command, not both");
  if (!location && !f.has("command")) f.fail("location", "is required: an entry file run as `bun run <location> --port <N>` (or set instances.command)");
  if (location) command = [options.bunPath, "run", isAbsolute(location) ? location : resolve(options.baseDir, location)];

  const cwd = f.string("cwd", options.baseDir);
  const envValue = f.raw("env");
  let env: Record<string, string> = {};
  if (envValue !== undefined) {
    if (isPlainObject(envValue) && Object.values(envValue).every((v) => typeof v === "string")) env = envValue as Record<string, string>;
    else f.fail("env", `must be an object of string values, got ${show(envValue)}`);
  }
  const resolved: ResolvedInstances = {
    command,
    cwd: isAbsolute(cwd) ? cwd : resolve(options.baseDir, cwd),
    env,
    min: f.number("min", 2, { integer: true, min: 0, max: 1000 }),
    max: f.number("max", 8, { integer: true, min: 1, max: 1000 }),
    basePort: f.number("basePort", 5001, { integer: true, min: 1, max: 65535 }),
    startTimeout: f.duration("startTimeout", 10_000, 1),
    stopTimeout: f.duration("stopTimeout", 10_000),
    maxRestarts: f.number("maxRestarts", 10, { integer: true, min: 0, max: 1000 }),
    slowStart: f.duration("slowStart", 3000),
    maxConnections: f.number("maxConnections", 0, { integer: true, min: 0, max: 1_000_000 }),
  };
  f.rejectUnknown();
  return resolved;
}

function readStrategy(root: Fields): StrategySpec {
  const fallback: StrategySpec = { kind: "builtin", name: "least-load", key: "ip" };
  const v = root.raw("strategy");
  if (v === undefined) return fallback;
  const allowed = `one of ${STRATEGY_NAMES.map((n) => `"${n}"`).join(", ")} or an object with a pick(pool, ctx) method`;
  if (typeof v === "string") {
    if ((STRATEGY_NAMES as readonly string[]).includes(v)) return { ...fallback, name: v as StrategyName };
    root.fail("strategy", `must be ${allowed}, got ${show(v)}`);
    return fallback;
  }
  if (isPlainObject(v) && typeof v.pick === "function") {
    return { kind: "custom", strategy: { name: typeof v.name === "string" ? v.name : "custom", pick: v.pick.bind(v) } };
  }
  const f = root.object("strategy");
  if (!f) return fallback;
  const name = f.oneOf("name", STRATEGY_NAMES, "least-load");
  if (!f.has("name")) f.fail("name", `is required: ${allowed}`);
  const key = f.string("key", "ip", keySourceProblem) as KeySource;
  f.rejectUnknown();
  return { kind: "builtin", name, key };
}

function readHealth(root: Fields): ResolvedConfig["health"] {
  const f = root.section("health");
  const eject = f.section("eject");
  const health = {
    path: f.string("path", "/health", (s) => (s.startsWith("/") ? undefined : 'must start with "/"')),
    interval: f.duration("interval", 5000, 1),
    timeout: f.duration("timeout", 2000, 1),
    rise: f.number("rise", 1, { integer: true, min: 1, max: 100 }),
    fall: f.number("fall", 2, { integer: true, min: 1, max: 100 }),
    eject: {
      consecutiveFailures: eject.number("consecutiveFailures", 3, { integer: true, min: 0 }),
      baseTime: eject.duration("baseTime", 10_000),
      errorRate: eject.number("errorRate", 0.5, { min: 0, max: 1 }),
      minRequests: eject.number("minRequests", 20, { integer: true, min: 1 }),
      window: eject.duration("window", 10_000, 1),
      trials: eject.number("trials", 3, { integer: true, min: 1, max: 100 }),
    },
  };
  eject.rejectUnknown();
  f.rejectUnknown();
  return health;
}

function readScaling(root: Fields): ResolvedConfig["scaling"] {
  const f = root.section("scaling");
  const scaling = {
    checkInterval: f.duration("checkInterval", 5000, 1),
    scaleUpThreshold: f.number("scaleUpThreshold", 3, { min: 0 }),
    scaleDownThreshold: f.number("scaleDownThreshold", 0.5, { min: 0 }),
    idleTimeout: f.duration("idleTimeout", 30_000),
    cooldown: f.duration("cooldown", 10_000),
    stableWindow: f.duration("stableWindow", 30_000, 1),
    panicWindow: f.duration("panicWindow", 3000, 1),
    panicThreshold: f.number("panicThreshold", 2, { min: 1 }),
  };
  f.rejectUnknown();
  return scaling;
}

function readProxy(root: Fields): ResolvedConfig["proxy"] {
  const f = root.section("proxy");
  const proxy = {
    connectTimeout: f.duration("connectTimeout", 5000, 1),
    responseTimeout: f.duration("responseTimeout", 60_000, 1),
    idleTimeout: f.duration("idleTimeout", 60_000),
    retries: f.number("retries", 2, { integer: true, min: 0, max: 10 }),
    maxBodySize: f.number("maxBodySize", 104_857_600, { integer: true, min: 0 }),
    preserveHost: f.boolean("preserveHost", true),
    trustProxy: readTrustProxy(f),
    // Retired (the serve engine always uses fetch(), the listen engine its own client): still accepted, with a warning at start.
    retiredTransport: f.has("transport") ? (f.oneOf("transport", ["fetch", "http1"] as const, "fetch"), true) : false,
    engine: f.oneOf("engine", ["listen", "serve"] as const, "listen"),
    headerTimeout: f.duration("headerTimeout", 10_000, 1),
    maxConnections: f.number("maxConnections", 10_000, { integer: true, min: 1 }),
    queue: readQueue(f),
    retryBudget: readRetryBudget(f),
    panicThreshold: f.number("panicThreshold", 0, { min: 0, max: 1 }),
  };
  f.rejectUnknown();
  return proxy;
}

function readQueue(proxy: Fields): ResolvedConfig["proxy"]["queue"] {
  const f = proxy.section("queue");
  const queue = { size: f.number("size", 1000, { integer: true, min: 0, max: 1_000_000 }), timeout: f.duration("timeout", 5000) };
  f.rejectUnknown();
  return queue;
}

function readRetryBudget(proxy: Fields): ResolvedConfig["proxy"]["retryBudget"] {
  const f = proxy.section("retryBudget");
  const budget = { ratio: f.number("ratio", 0.2, { min: 0, max: 1 }), min: f.number("min", 3, { integer: true, min: 0, max: 1_000_000 }) };
  f.rejectUnknown();
  return budget;
}

function readTrustProxy(f: Fields): boolean | readonly string[] {
  const v = f.raw("trustProxy");
  if (v === undefined || typeof v === "boolean") return v ?? false;
  if (Array.isArray(v)) {
    const bad = v.find((c) => typeof c !== "string" || !parseCidr(c));
    if (bad === undefined) return v as string[];
    f.fail("trustProxy", `must be true, false or a list of CIDRs like "10.0.0.0/8", got ${show(bad)} in the list`);
    return false;
  }
  f.fail("trustProxy", `must be true, false or a list of CIDRs, got ${show(v)}`);
  return false;
}

function readRateLimit(root: Fields): ResolvedConfig["rateLimit"] {
  const f = root.object("rateLimit");
  if (!f) return null;
  if (!f.has("requestsPerSecond")) f.fail("requestsPerSecond", "is required (a number > 0)");
  const requestsPerSecond = f.number("requestsPerSecond", 1, { min: 0.001 });
  const limit = {
    requestsPerSecond,
    burst: f.number("burst", Math.max(1, Math.ceil(requestsPerSecond)), { integer: true, min: 1 }),
    key: f.string("key", "ip", keySourceProblem) as KeySource,
    store: f.oneOf("store", ["memory", "redis"] as const, "memory"),
  };
  f.rejectUnknown();
  return limit;
}

function readAdmin(root: Fields): ResolvedConfig["admin"] {
  const f = root.section("admin");
  const admin = {
    port: f.has("port") ? f.number("port", 0, { integer: true, min: 0, max: 65535 }) : null,
    token: f.optionalString("token"),
  };
  f.rejectUnknown();
  return admin;
}

function readCluster(root: Fields): ResolvedConfig["cluster"] {
  const f = root.section("cluster");
  const cluster = {
    workers: f.number("workers", 1, { integer: true, min: 1, max: 64 }),
    redis: f.has("redis") ? f.string("redis", "", (s) => (/^rediss?:\/\/./.test(s) ? undefined : "must be a redis:// or rediss:// URL")) || null : null,
    name: f.string("name", "default", (s) => (/^[A-Za-z0-9._-]{1,64}$/.test(s) ? undefined : "must be 1-64 letters, digits, '.', '_' or '-'")),
  };
  f.rejectUnknown();
  return cluster;
}

function readLog(root: Fields): ResolvedConfig["log"] {
  const f = root.section("log");
  const log = {
    level: f.oneOf("level", LOG_LEVELS, "info"),
    format: f.oneOf("format", ["text", "json"] as const, "text"),
    access: f.boolean("access", true),
  };
  f.rejectUnknown();
  return log;
}
