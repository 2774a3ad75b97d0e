/**
 * Real processes for end-to-end tests: Fulcrum itself and fixture backends,
 * on ephemeral 127.0.0.1 ports. Every process started here is recorded and
 * killed by PID in `afterAll` (register with `cleanupAfterAll()`), whatever
 * the test did.
 */
import { afterAll, setDefaultTimeout } from "bun:test";
import type { Subprocess } from "bun";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "../..");
export const MAIN = join(ROOT, "src/main.ts");
export const FIXTURE_BACKEND = join(ROOT, "tests/fixtures/backend.ts");

const started = new Set<Subprocess>();

/** The engine e2e suites run on: FULCRUM_TEST_ENGINE, else Fulcrum's default. */
export const TEST_ENGINE: "listen" | "serve" = process.env.FULCRUM_TEST_ENGINE === "listen" ? "listen" : process.env.FULCRUM_TEST_ENGINE === "serve" ? "serve" : "listen";

/** Call once at the top of an e2e file: kills what it started afterwards, and gives its tests 30 s. */
export function cleanupAfterAll(): void {
  setDefaultTimeout(30_000);
  afterAll(async () => {
    // SIGTERM first: a Fulcrum stops its own managed instances then (a SIGKILL would orphan them).
    const alive = [...started].filter((p) => p.exitCode === null && p.signalCode === null);
    for (const proc of alive) proc.kill("SIGTERM");
    await Promise.race([Promise.all(alive.map((p) => p.exited)), Bun.sleep(10_000)]);
    for (const proc of alive) if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    await Promise.all([...started].map((p) => p.exited));
    started.clear();
  }, 30_000);
}

/** Collects a child's output as it arrives, so tests can wait for a line. */
export class Output {
  text = "";
  readonly #waiters = new Set<() => void>();

  constructor(stream: ReadableStream<Uint8Array>) {
    void (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) {
        this.text += decoder.decode(chunk, { stream: true });
        for (const wake of this.#waiters) wake();
      }
    })();
  }

  /** Resolves with the first match of `pattern`, or rejects after `timeoutMs` with the output so far. */
  wait(pattern: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    return new Promise((resolvePromise, reject) => {
      const check = () => {
        const match = this.text.match(pattern);
        if (!match) return;
        cleanup();
        resolvePromise(match);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs}ms waiting for ${pattern}; output so far:\n${this.text}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Lines of the output matching `pattern`. */
  lines(pattern: RegExp): string[] {
    return this.text.split("\n").filter((line) => pattern.test(line));
  }
}

export interface Running {
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  readonly stdout: Output;
  readonly stderr: Output;
  readonly port: number;
  readonly url: string;
  /** Sends `signal` and waits for exit; returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function spawnTracked(cmd: string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}) {
  const proc = Bun.spawn(cmd, {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  started.add(proc);
  return { proc, stdout: new Output(proc.stdout), stderr: new Output(proc.stderr) };
}

function running(spawned: ReturnType<typeof spawnTracked>, port: number): Running {
  return {
    ...spawned,
    port,
    url: `http://127.0.0.1:${port}`,
    async stop(signal = "SIGTERM") {
      if (spawned.proc.exitCode === null) spawned.proc.kill(signal);
      return spawned.proc.exited;
    },
  };
}

/** A fixture backend (tests/fixtures/backend.ts) on an ephemeral port, or `port` when given. */
export async function startBackend(name: string, port = 0): Promise<Running> {
  const spawned = spawnTracked(["bun", FIXTURE_BACKEND, "--port", String(port), "--name", name]);
  const match = await spawned.stdout.wait(/listening on (\d+)/);
  return running(spawned, Number(match[1]));
}

/**
 * Fulcrum with `args` (add `--port 0` for an ephemeral port); resolves once
 * it logs the port it listens on.
 */
export async function startFulcrum(
  args: string[],
  options: { cwd?: string; env?: Record<string, string | undefined>; readyTimeoutMs?: number } = {},
): Promise<Running> {
  const proxy: Record<string, string> = {};
  if (process.env.FULCRUM_TEST_ENGINE) proxy.engine = process.env.FULCRUM_TEST_ENGINE;
  if (Object.keys(proxy).length > 0) args = withProxySettings(args, proxy);
  const spawned = spawnTracked(["bun", MAIN, ...args], { cwd: options.cwd, env: { PORT: undefined, ...options.env } });
  const match = await Promise.race([
    spawned.stdout.wait(/Load balancer running on port (\d+)/, options.readyTimeoutMs ?? 15_000),
    spawned.proc.exited.then((code) => {
      throw new Error(`fulcrum exited with ${code} before listening:\n${spawned.stdout.text}\n${spawned.stderr.text}`);
    }),
  ]);
  return running(spawned, Number(match[1]));
}

/**
 * FULCRUM_TEST_ENGINE=serve runs a suite on the other engine
 * (tests/e2e/engines.test.ts does): a JSON
 * config gets those `proxy` settings, and flags-only runs are turned into an
 * equivalent JSON config.
 */
function withProxySettings(args: string[], settings: Record<string, string>): string[] {
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const configFile = flag("--config");
  if (configFile) {
    // Edited in place, so that a test that rewrites or reloads its file keeps talking to the same one.
    if (!configFile.endsWith(".json")) return args;
    const config = JSON.parse(readFileSync(configFile, "utf8")) as Record<string, unknown>;
    config.proxy = { ...(config.proxy as object | undefined), ...settings };
    writeFileSync(configFile, JSON.stringify(config));
    return args;
  }
  const backends = args.filter((_, i) => args[i - 1] === "--backend");
  const config: Record<string, unknown> = { listen: { port: Number(flag("--port") ?? 4000) }, backends, proxy: settings };
  if (flag("--strategy")) config.strategy = flag("--strategy");
  const file = join(tempDir(), "with-proxy-settings.json");
  writeFileSync(file, JSON.stringify(config));
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (["--backend", "--strategy", "--port"].includes(args[i] as string)) i++;
    else rest.push(args[i] as string);
  }
  return ["--config", file, ...rest];
}

/** A fixture backend that a chaos loop (helpers/chaos.ts) can kill and bring back on the same port. */
export async function restartableBackend(name: string): Promise<{ name: string; url: string; kill(): Promise<void>; start(): Promise<void> }> {
  let running: Running = await startBackend(name);
  const port = running.port;
  return {
    name,
    url: running.url,
    async kill() {
      await running.stop("SIGKILL");
    },
    async start() {
      running = await startBackend(name, port);
    },
  };
}

/** Writes `files` into a fresh temp directory and returns its path. */
export function tempDir(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "fulcrum-test-"));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}

/**
 * A base for a run of ports an instance set will bind (basePort, basePort+1,
 * ...). It stays below Linux's ephemeral range (32768 and up), where the
 * suite's own outgoing connections would take ports at random.
 */
export function randomBasePort(): number {
  return 20_000 + Math.floor(Math.random() * 12_000);
}

/** A port free on 127.0.0.1 right now (bound, read, released). */
export function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

/**
 * A throwaway redis-server on 127.0.0.1 (no persistence); pass `port` to start
 * it again where it was, `password` to require one (the URL carries it).
 */
export async function startRedis(
  port = freePort(),
  password?: string,
): Promise<{ url: string; port: number; proc: Running["proc"]; stop(): Promise<void> }> {
  const auth = password ? ["--requirepass", password] : [];
  const redis = spawnTracked(["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...auth]);
  await redis.stdout.wait(/Ready to accept connections/);
  return {
    url: password ? `redis://:${encodeURIComponent(password)}@127.0.0.1:${port}` : `redis://127.0.0.1:${port}`,
    port,
    proc: redis.proc,
    async stop() {
      redis.proc.kill("SIGKILL");
      await redis.proc.exited;
    },
  };
}

/** Polls `check` every 50 ms until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 10_000, what = "condition"): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < deadline) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    await Bun.sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

/** Whether a process with this PID exists (signal 0 probes without signalling). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
