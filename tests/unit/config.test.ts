import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ConfigError, formatIssue } from "../../src/config/fields.ts";
import { validateConfig } from "../../src/config/validate.ts";

const options = { baseDir: "/srv/app", bunPath: "/usr/bin/bun" };
const minimal = { backends: ["http://127.0.0.1:3001"] };

/** The error lines validation produces for `raw`, or [] when it is valid. */
function problems(raw: unknown): string[] {
  try {
    validateConfig(raw, options);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map(formatIssue);
    throw error;
  }
}

describe("config validation", () => {
  test("fills every default", () => {
    const config = validateConfig(minimal, options);
    expect(config.listen).toEqual({ port: 4000, hostname: "0.0.0.0", tls: null });
    expect(config.strategy).toEqual({ kind: "builtin", name: "least-load", key: "ip" });
    expect(config.health).toEqual({ path: "/health", interval: 5000, timeout: 2000, rise: 1, fall: 2, eject: { consecutiveFailures: 3, baseTime: 10_000, errorRate: 0.5, minRequests: 20, window: 10_000, trials: 3 } });
    expect(config.proxy.retries).toBe(2);
    expect(config.proxy.maxBodySize).toBe(104_857_600);
    expect(config.backends).toEqual([{ url: "http://127.0.0.1:3001", host: "127.0.0.1:3001", port: 3001, weight: 1, maxConnections: 0 }]);
    expect(config.proxy.queue).toEqual({ size: 1000, timeout: 5000 });
    expect(config.proxy.retryBudget).toEqual({ ratio: 0.2, min: 3 });
  });

  test("names the key, the bad value and what is allowed", () => {
    expect(problems({ ...minimal, backends: ["http://a:1", { url: "http://b:2", weight: -1 }] })).toEqual([
      "backends[1].weight: must be a number between 0 and 1000000, got -1",
    ]);
    expect(problems({ ...minimal, strategy: "fastest" })).toEqual([
      'strategy: must be one of "round-robin", "least-load", "weighted", "p2c", "hash" or an object with a pick(pool, ctx) method, got "fastest"',
    ]);
    expect(problems({ ...minimal, log: { format: "xml" } })).toEqual(['log.format: must be one of "text", "json", got "xml"']);
  });

  test("collects every error in one pass", () => {
    const found = problems({ listen: { port: 70000 }, backends: ["ftp://x"], health: { interval: "5s" }, proxy: { retries: 1.5 } });
    expect(found).toHaveLength(4);
    expect(found.join("\n")).toContain("listen.port: must be an integer between 0 and 65535, got 70000");
    expect(found.join("\n")).toContain('backends[0]: must start with http:// or https://, got "ftp://x"');
    expect(found.join("\n")).toContain('health.interval: must be an integer >= 1, got "5s"');
  });

  test("rejects unknown keys, suggesting the closest known one", () => {
    expect(problems({ ...minimal, helth: {} })).toEqual(['helth: unknown key (did you mean "health"?)']);
    expect(problems({ ...minimal, proxy: { retires: 1 } })).toEqual(['proxy.retires: unknown key (did you mean "retries"?)']);
    expect(problems({ ...minimal, zzz: 1 })[0]).toStartWith("zzz: unknown key (allowed: listen, backends,");
  });

  test("needs something to balance", () => {
    expect(problems({})).toEqual(["nothing to balance: set `backends` or `instances` in the config, or pass --backend URL"]);
  });

  test("backends may be URLs, { url, weight } or the distributed balancer's { host, port }", () => {
    const config = validateConfig({ backends: ["http://a:1/", { url: "https://b", weight: 3 }, { host: "backend-1", port: 3001 }] }, options);
    expect(config.backends.map((b) => [b.url, b.weight])).toEqual([
      ["http://a:1", 1],
      ["https://b", 3],
      ["http://backend-1:3001", 1],
    ]);
  });

  test("a backend URL with a path is refused (Fulcrum forwards the request path as is)", () => {
    expect(problems({ backends: ["http://a:1/api"] })).toEqual(['backends[0]: must be an origin without a path (http://host:port), got "http://a:1/api"']);
  });

  test("instances.location runs under bun, relative to the config file", () => {
    const config = validateConfig({ instances: { location: "./app.ts", min: 1 } }, options);
    expect(config.instances?.command).toEqual(["/usr/bin/bun", "run", "/srv/app/app.ts"]);
    expect(config.instances?.cwd).toBe("/srv/app");
  });

  test("instances need location or command, and min <= max", () => {
    expect(problems({ instances: {} })).toEqual([
      "instances.location: is required: an entry file run as `bun run <location> --port <N>` (or set instances.command)",
    ]);
    expect(problems({ instances: { location: "a.ts", min: 5, max: 2 } })).toEqual(["instances.min: must be <= instances.max (2), got 5"]);
  });

  test("strategy objects: a built-in with options, or your own pick()", () => {
    expect(validateConfig({ ...minimal, strategy: { name: "hash", key: "header:X-User" } }, options).strategy).toEqual({
      kind: "builtin",
      name: "hash",
      key: "header:X-User",
    });
    const custom = validateConfig({ ...minimal, strategy: { name: "first", pick: (pool: unknown[]) => pool[0] } }, options).strategy;
    expect(custom.kind).toBe("custom");
    expect(problems({ ...minimal, strategy: { name: "hash", key: "cookie:x" } })).toEqual([
      'strategy.key: must be "ip" or "header:<Name>", got "cookie:x"',
    ]);
  });

  test("trustProxy takes true, false or CIDRs", () => {
    expect(validateConfig({ ...minimal, proxy: { trustProxy: ["10.0.0.0/8", "::1"] } }, options).proxy.trustProxy).toEqual(["10.0.0.0/8", "::1"]);
    expect(problems({ ...minimal, proxy: { trustProxy: ["10.0.0.0/33"] } })).toEqual([
      'proxy.trustProxy: must be true, false or a list of CIDRs like "10.0.0.0/8", got "10.0.0.0/33" in the list',
    ]);
  });

  test("errors say where an overridden value came from", () => {
    expect(() => validateConfig({ ...minimal, listen: { port: "abc" } }, { ...options, origins: new Map([["listen.port", "PORT"]]) })).toThrow(
      'listen.port (from PORT): must be an integer between 0 and 65535, got "abc"',
    );
  });
});

describe("documented defaults", () => {
  test("every @default in schema.ts is the default validation applies", async () => {
    const source = await Bun.file(join(import.meta.dir, "../../src/config/schema.ts")).text();
    const body = source.slice(source.indexOf("export interface Config {"), source.indexOf("export type StrategySpec"));
    const resolved = validateConfig(
      { backends: ["http://a:1"], instances: { location: "a.ts" }, rateLimit: { requestsPerSecond: 5 } },
      options,
    ) as unknown as Record<string, unknown>;
    const stack: string[] = [];
    let pendingDefault: string | undefined;
    let checked = 0;
    for (const line of body.split("\n").slice(1)) {
      const tag = line.match(/@default (.+?)\s*(\*\/)?$/);
      if (tag) pendingDefault = tag[1];
      const key = line.match(/^\s*(\w+)\??: /)?.[1];
      if (key) {
        if (pendingDefault !== undefined) {
          let expected: unknown;
          try {
            expected = JSON.parse(pendingDefault);
          } catch {
            expected = undefined; // prose defaults ("the listen port") are not machine-checked
          }
          if (expected !== undefined) {
            const actual = [...stack, key].reduce<unknown>((node, k) => (node as Record<string, unknown> | undefined)?.[k], resolved);
            const path = [...stack, key].join(".");
            if (key === "strategy") expect((actual as { name: string }).name, path).toBe(expected as string);
            else expect(actual, path).toEqual(expected);
            checked++;
          }
        }
        pendingDefault = undefined;
        if (/\?: \{$/.test(line)) stack.push(key);
      }
      if (/^\s*\};$/.test(line)) stack.pop();
    }
    expect(checked).toBeGreaterThan(30);
  });
});
