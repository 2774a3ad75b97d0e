/**
 * The command line and config files as an operator uses them: every supported
 * format (including the seeds' own files, unchanged), env and flag overrides,
 * clear errors with exit code 1, `--check`, log formats, TLS and the admin port.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { cleanupAfterAll, freePort, MAIN, ROOT, type Running, spawnTracked, startBackend, startFulcrum, tempDir } from "../helpers/procs.ts";

cleanupAfterAll();

let backend: Running;
beforeAll(async () => {
  backend = await startBackend("cfg");
});

/** Runs Fulcrum to completion (for --check, --help and errors). */
async function runToExit(args: string[], env: Record<string, string | undefined> = {}, cwd?: string) {
  const run = spawnTracked(["bun", MAIN, ...args], { env: { PORT: undefined, ...env }, cwd });
  const code = await run.proc.exited;
  await Bun.sleep(20);
  return { code, stdout: run.stdout.text, stderr: run.stderr.text };
}

describe("config files", () => {
  test("the original autoscaler's config.yaml works unchanged", async () => {
    const dir = tempDir();
    await Bun.write(
      join(dir, "config.yaml"),
      [
        `location: "${join(ROOT, "examples/backend.ts")}"   # Path to the Bun entry point`,
        "minInstances: 2                     # Minimum number of instances",
        "maxInstances: 8                     # Maximum number of instances",
        "checkInterval: 5000                # Health + scaling check interval (ms)",
        "healthTimeout: 2000                # Timeout for health checks (ms)",
        "scaleUpThreshold: 3               # Avg load to trigger scale-up",
        "scaleDownThreshold: 0.5           # Avg load to trigger scale-down",
        "idleTimeout: 30000                 # Time before an idle instance is removed (ms)",
      ].join("\n"),
    );
    const lb = await startFulcrum(["--config", join(dir, "config.yaml"), "--port", "0"]);
    expect(await (await fetch(lb.url)).text()).toStartWith("Hello from backend on port");
    const status = (await (await fetch(`${lb.url}/lb-status`)).json()) as { total: number; healthy: number; scaling: { min: number; max: number } };
    expect(status).toMatchObject({ total: 2, healthy: 2, scaling: { min: 2, max: 8 } });
    expect(await lb.stop()).toBe(0);
  });

  test("the distributed balancer's backends.json ({ host, port }) works, with PORT from the environment", async () => {
    const dir = tempDir({ "backends.json": JSON.stringify({ backends: [{ host: "127.0.0.1", port: backend.port }] }) });
    const port = freePort();
    const lb = await startFulcrum(["--config", join(dir, "backends.json")], { env: { PORT: String(port) } });
    expect(lb.port).toBe(port);
    expect(await (await fetch(lb.url)).text()).toBe("backend cfg");
    await lb.stop();
  });

  test("a .ts config outside the project can import defineConfig from \"fulcrum\" and bring its own strategy", async () => {
    const dir = tempDir({
      "lb.config.ts": `
        import { defineConfig } from "fulcrum";
        import type { Strategy } from "fulcrum";
        const lastOne: Strategy = { name: "last-one", pick: (pool) => pool.filter((b) => b.available).at(-1) };
        export default defineConfig({
          listen: { port: 0, hostname: "127.0.0.1" },
          backends: ["http://127.0.0.1:1", "${backend.url}"],
          strategy: lastOne,
          log: { access: false },
        });`,
    });
    const lb = await startFulcrum(["--config", join(dir, "lb.config.ts")]);
    for (let i = 0; i < 3; i++) expect(await (await fetch(lb.url)).text()).toBe("backend cfg");
    expect(lb.stdout.text).toContain("Strategy: last-one");
    await lb.stop();
  });

  test("a .js config works", async () => {
    const dir = tempDir({ "lb.config.js": `export default { listen: { port: 0 }, backends: ["${backend.url}"] };` });
    const lb = await startFulcrum(["--config", join(dir, "lb.config.js")]);
    expect((await fetch(lb.url)).status).toBe(200);
    await lb.stop();
  });
});

describe("errors", () => {
  test("an invalid config prints one line per problem naming key, value and what is allowed, exits 1, starts nothing", async () => {
    const dir = tempDir({
      "bad.json": JSON.stringify({ listen: { port: 99999 }, backends: ["localhost:3001"], strategy: "fastest", helth: {} }),
    });
    const { code, stdout, stderr } = await runToExit(["--config", join(dir, "bad.json")]);
    expect(code).toBe(1);
    expect(stdout).toBe("");
    const lines = stderr.trim().split("\n");
    expect(lines).toEqual([
      "fulcrum: invalid config: listen.port: must be an integer between 0 and 65535, got 99999",
      'fulcrum: invalid config: backends[0]: must start with http:// or https://, got "localhost:3001"',
      'fulcrum: invalid config: strategy: must be one of "round-robin", "least-load", "weighted", "p2c", "hash" or an object with a pick(pool, ctx) method, got "fastest"',
      'fulcrum: invalid config: helth: unknown key (did you mean "health"?)',
    ]);
  });

  test("a bad environment value is named by its variable", async () => {
    const { code, stderr } = await runToExit(["--backend", backend.url], { WORKER_COUNT: "many" });
    expect(code).toBe(1);
    expect(stderr).toContain('cluster.workers (from WORKER_COUNT): must be an integer between 1 and 64, got "many"');
  });

  test("an unknown flag is an error with a suggestion", async () => {
    const { code, stderr } = await runToExit(["--backends", backend.url]);
    expect(code).toBe(1);
    expect(stderr).toBe("fulcrum: unknown flag --backends (did you mean --backend?); see --help\n");
  });

  test("a missing config file says how to proceed", async () => {
    const { code, stderr } = await runToExit([], {}, tempDir());
    expect(code).toBe(1);
    expect(stderr).toContain("lb.config.ts: config file not found (pass --config FILE, or --backend URL to run without one)");
  });

  test("a config file that throws is reported, not a stack dump", async () => {
    const dir = tempDir({ "lb.config.ts": "throw new Error('oops in config');" });
    const { code, stderr } = await runToExit(["--config", join(dir, "lb.config.ts")]);
    expect(code).toBe(1);
    expect(stderr).toContain("could not be read: oops in config");
  });
});

describe("--check, --help, --version", () => {
  test("--check prints the effective config with overrides applied and exits 0", async () => {
    const { code, stdout } = await runToExit(["--check", "--port", "3000", "--strategy", "p2c", "--backend", "http://localhost:3001"], {
      HEALTH_CHECK_INTERVAL: "30000",
    });
    expect(code).toBe(0);
    const printed = JSON.parse(stdout.slice(0, stdout.lastIndexOf("}") + 1));
    expect(printed.listen.port).toBe(3000);
    expect(printed.strategy.name).toBe("p2c");
    expect(printed.health.interval).toBe(30000);
    expect(printed.backends).toEqual([{ url: "http://localhost:3001", host: "localhost:3001", port: 3001, weight: 1, maxConnections: 0 }]);
    expect(stdout).toContain("config OK");
  });

  test("--check on the shipped lb.config.ts passes", async () => {
    const { code, stdout } = await runToExit(["--check"]);
    expect(code).toBe(0);
    expect(stdout).toContain(`config OK: ${join(ROOT, "lb.config.ts")}`);
  });

  test("--help and --version", async () => {
    expect((await runToExit(["--help"])).stdout).toContain("--backend URL");
    expect((await runToExit(["--version"])).stdout).toMatch(/^fulcrum \d+\.\d+\.\d+ \(bun 1\.4\.4\)/);
  });
});

describe("logs", () => {
  test("log.format json gives one JSON object per line", async () => {
    const dir = tempDir({ "lb.json": JSON.stringify({ listen: { port: 0 }, backends: [backend.url], log: { format: "json" } }) });
    const lb = await startFulcrum(["--config", join(dir, "lb.json")]);
    await fetch(`${lb.url}/some/path`, { headers: { "x-request-id": "req-42" } }); // the fixture answers 404 for unknown paths
    await lb.stdout.wait(/"type":"response"/);
    await lb.stop();
    const lines = lb.stdout.text.trim().split("\n");
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const response = records.find((r) => r.type === "response") as Record<string, unknown>;
    // The stable field names (docs/operations.md).
    expect(response).toMatchObject({ level: "info", request_id: "req-42", client: "127.0.0.1", method: "GET", path: "/some/path", backend: backend.url, status: 404 });
    expect(typeof response.duration_ms).toBe("number");
    expect(response.bytes_in as number).toBeGreaterThan(30);
    expect(response.bytes_out as number).toBeGreaterThan(20);
    expect(records.every((r) => typeof r.time === "string" && typeof r.msg === "string")).toBe(true);
  });

  test("the text access line keeps the SPEC form and adds bytes sent, the client and the request id", async () => {
    const dir = tempDir({ "lb.json": JSON.stringify({ listen: { port: 0 }, backends: [backend.url] }) });
    const lb = await startFulcrum(["--config", join(dir, "lb.json")]);
    await (await fetch(`${lb.url}/`, { headers: { "x-request-id": "abc" } })).text();
    const [line] = await lb.stdout.wait(/RESPONSE: .*\n/);
    expect(line).toMatch(new RegExp(`^RESPONSE: GET / <- ${backend.url.replaceAll(".", "\\.")} \\[200\\] \\d+ms \\d+B from 127\\.0\\.0\\.1 id=abc\\n$`));
    await lb.stop();
  });

  test("log.access false silences per-request lines", async () => {
    const dir = tempDir({ "lb.json": JSON.stringify({ listen: { port: 0 }, backends: [backend.url], log: { access: false } }) });
    const lb = await startFulcrum(["--config", join(dir, "lb.json")]);
    for (let i = 0; i < 3; i++) await fetch(lb.url);
    await lb.stop();
    expect(lb.stdout.text).not.toContain("REQUEST:");
    expect(lb.stdout.text).not.toContain("RESPONSE:");
    expect(lb.stdout.text).toContain("INFO: Load balancer running on port");
  });
});

describe("listeners", () => {
  test("TLS: serves HTTPS and tells the backend the client used https", async () => {
    const dir = tempDir();
    const openssl = Bun.spawnSync(
      ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=localhost"],
      { stderr: "pipe" },
    );
    expect(openssl.exitCode).toBe(0);
    await Bun.write(
      join(dir, "lb.json"),
      JSON.stringify({ listen: { port: 0, tls: { cert: join(dir, "cert.pem"), key: join(dir, "key.pem") } }, backends: [backend.url] }),
    );
    const lb = await startFulcrum(["--config", join(dir, "lb.json")]);
    const res = await fetch(`https://127.0.0.1:${lb.port}/headers`, { tls: { rejectUnauthorized: false } } as RequestInit);
    const seen = (await res.json()) as { headers: Record<string, string[]> };
    expect(seen.headers["x-forwarded-proto"]).toEqual(["https"]);
    await lb.stop();
  });

  test("admin.port moves /lb-* endpoints off the listen port", async () => {
    const adminPort = freePort();
    const dir = tempDir({ "lb.json": JSON.stringify({ listen: { port: 0 }, backends: [backend.url], admin: { port: adminPort } }) });
    const lb = await startFulcrum(["--config", join(dir, "lb.json")]);
    expect((await fetch(`${lb.url}/lb-status`)).status).toBe(404); // proxied to the backend, which has no such route
    expect((await fetch(`http://127.0.0.1:${adminPort}/lb-status`)).status).toBe(200);
    expect(await (await fetch(`http://127.0.0.1:${adminPort}/lb-health`)).text()).toBe("ok");
    await lb.stop();
  });
});
