import { describe, expect, test } from "bun:test";
import { CliError, parseCli } from "../../src/config/cli.ts";
import { envOverrides } from "../../src/config/env.ts";
import { translateLegacyKeys } from "../../src/config/legacy.ts";
import { applyOverrides } from "../../src/config/overrides.ts";
import { cidrContains, parseCidr, parseIp } from "../../src/config/cidr.ts";

describe("command line", () => {
  test("the quickstart's flags", () => {
    const cli = parseCli(["--port", "3000", "--backend", "http://localhost:3001", "--backend", "http://localhost:3002"]);
    expect(cli.backends).toEqual(["http://localhost:3001", "http://localhost:3002"]);
    expect(cli.overrides).toContainEqual({ path: "listen.port", value: 3000, origin: "--port" });
    expect(cli.overrides).toContainEqual({ path: "backends", value: ["http://localhost:3001", "http://localhost:3002"], origin: "--backend" });
    expect(cli.configPath).toBeUndefined();
  });

  test("--flag=value works too", () => {
    const cli = parseCli(["--config=x.yaml", "--strategy=p2c", "--workers=2", "--check"]);
    expect(cli.configPath).toBe("x.yaml");
    expect(cli.check).toBe(true);
    expect(cli.overrides).toEqual([
      { path: "strategy", value: "p2c", origin: "--strategy" },
      { path: "cluster.workers", value: 2, origin: "--workers" },
    ]);
  });

  test("unknown flags and missing values are clear errors", () => {
    expect(() => parseCli(["--prot", "3000"])).toThrow(new CliError("unknown flag --prot (did you mean --port?); see --help"));
    expect(() => parseCli(["--port"])).toThrow("--port needs a value");
    expect(() => parseCli(["--backend", "--port", "1"])).toThrow("--backend needs a value");
    expect(() => parseCli(["serve"])).toThrow('unexpected argument "serve"');
  });

  test("a non-numeric port stays a string for validation to reject with its origin", () => {
    expect(parseCli(["--port", "abc"]).overrides).toEqual([{ path: "listen.port", value: "abc", origin: "--port" }]);
  });
});

describe("environment", () => {
  test("the distributed balancer's variables map to config keys", () => {
    expect(envOverrides({ PORT: "8080", REDIS_URL: "redis://r:6379", WORKER_COUNT: "4", HEALTH_CHECK_INTERVAL: "30000", OTHER: "x" })).toEqual([
      { path: "listen.port", value: 8080, origin: "PORT" },
      { path: "cluster.redis", value: "redis://r:6379", origin: "REDIS_URL" },
      { path: "cluster.workers", value: 4, origin: "WORKER_COUNT" },
      { path: "health.interval", value: 30000, origin: "HEALTH_CHECK_INTERVAL" },
    ]);
  });

  test("overrides land on a copy, keeping the rest of the section", () => {
    const file = { listen: { hostname: "127.0.0.1", port: 4000 } };
    const { raw, origins } = applyOverrides(file, [{ path: "listen.port", value: 8080, origin: "PORT" }]);
    expect(raw).toEqual({ listen: { hostname: "127.0.0.1", port: 8080 } });
    expect(file.listen.port).toBe(4000);
    expect(origins.get("listen.port")).toBe("PORT");
  });
});

describe("the original autoscaler's config.yaml keys", () => {
  test("translate into Fulcrum's sections", () => {
    const { rest, overrides } = translateLegacyKeys({
      location: "../backend/src/bin.ts",
      minInstances: 2,
      maxInstances: 8,
      checkInterval: 5000,
      healthTimeout: 2000,
      scaleUpThreshold: 3,
      scaleDownThreshold: 0.5,
      idleTimeout: 30000,
      log: { level: "debug" },
    });
    expect(rest).toEqual({ log: { level: "debug" } });
    const { raw } = applyOverrides(rest, overrides);
    expect(raw).toEqual({
      log: { level: "debug" },
      instances: { location: "../backend/src/bin.ts", min: 2, max: 8 },
      health: { interval: 5000, timeout: 2000 },
      scaling: { checkInterval: 5000, scaleUpThreshold: 3, scaleDownThreshold: 0.5, idleTimeout: 30000 },
    });
  });
});

describe("CIDR matching", () => {
  const has = (cidr: string, ip: string) => cidrContains(parseCidr(cidr)!, parseIp(ip)!);
  test("IPv4 ranges, including IPv4-mapped IPv6 peers", () => {
    expect(has("10.0.0.0/8", "10.200.3.4")).toBe(true);
    expect(has("10.0.0.0/8", "11.0.0.1")).toBe(false);
    expect(has("192.168.1.0/23", "192.168.0.255")).toBe(true);
    expect(has("127.0.0.1", "::ffff:127.0.0.1")).toBe(true);
  });
  test("IPv6 ranges", () => {
    expect(has("fd00::/8", "fd12:3456::1")).toBe(true);
    expect(has("::1/128", "::1")).toBe(true);
    expect(has("::1/128", "::2")).toBe(false);
  });
  test("rejects malformed ranges", () => {
    for (const bad of ["10.0.0.0/33", "300.1.1.1", "1.2.3", "::1::2", "abc", "10.0.0.0/8/1"]) expect(parseCidr(bad)).toBeUndefined();
  });
});
