/**
 * Managed instances: spawns `instances.command --port <N>` with `Bun.spawn`,
 * routes to an instance only once its health path answers, replaces one that
 * exits, and stops them all (SIGTERM, then SIGKILL after `stopTimeout`).
 */
import type { Subprocess } from "bun";
import type { ResolvedConfig, ResolvedInstances } from "../config/schema.ts";
import { forEachLine } from "./lines.ts";
import type { Logger } from "./log.ts";
import type { Member, Pool } from "./pool.ts";
import { findFreePort } from "./ports.ts";
import { probe } from "./prober.ts";

/** How long to wait before replacing an instance that exited on its own. */
const REPLACE_DELAY_MS = 1000;
const READY_POLL_MS = 100;

/** In a `bun build --compile` binary, `process.execPath` is Fulcrum itself; BUN_BE_BUN makes it act as `bun`. */
const COMPILED = Bun.main.startsWith("/$bunfs/");

interface Running {
  readonly member: Member;
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  stopping: boolean;
}

export class Supervisor {
  readonly #cfg: ResolvedInstances;
  readonly #health: ResolvedConfig["health"];
  readonly #pool: Pool;
  readonly #log: Logger;
  readonly #running = new Set<Running>();
  #desired: number;
  #shuttingDown = false;

  constructor(cfg: ResolvedInstances, health: ResolvedConfig["health"], pool: Pool, log: Logger) {
    this.#cfg = cfg;
    this.#health = health;
    this.#pool = pool;
    this.#log = log;
    this.#desired = cfg.min;
  }

  get desired(): number {
    return this.#desired;
  }

  /** Starts `min` instances; resolves when each is ready or has failed to start. */
  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.#desired }, () => this.#launch()));
  }

  async #launch(): Promise<void> {
    if (this.#shuttingDown) return;
    const taken = new Set([...this.#running].map((r) => r.member.port));
    const port = findFreePort(this.#cfg.basePort, taken);
    const command = [...this.#cfg.command, "--port", String(port)];
    const env: Record<string, string | undefined> = { ...process.env, ...this.#cfg.env, PORT: String(port) };
    if (COMPILED && command[0] === process.execPath) env.BUN_BE_BUN = "1";

    let proc: Running["proc"];
    try {
      proc = Bun.spawn(command, { cwd: this.#cfg.cwd, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    } catch (error) {
      this.#log.error(`could not start instance (${command.join(" ")}): ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    const member = this.#pool.addManaged(port, proc.pid);
    const running: Running = { member, proc, stopping: false };
    this.#running.add(running);
    this.#log.info(`instance ${member.id} starting on port ${port} (pid ${proc.pid})`);
    void forEachLine(proc.stdout, (line) => this.#log.instance(member.id, "stdout", line));
    void forEachLine(proc.stderr, (line) => this.#log.instance(member.id, "stderr", line));
    void proc.exited.then((code) => this.#onExit(running, code));

    if (await this.#waitReady(running)) {
      this.#pool.setState(member, "healthy");
      this.#log.info(`instance ${member.id} ready on port ${port}`);
    } else if (!running.stopping && proc.exitCode === null) {
      this.#log.error(`instance ${member.id} did not answer ${this.#health.path} within ${this.#cfg.startTimeout}ms; stopping it`);
      await this.#stop(running);
    }
  }

  async #waitReady(running: Running): Promise<boolean> {
    const deadline = performance.now() + this.#cfg.startTimeout;
    while (performance.now() < deadline && !running.stopping && running.proc.exitCode === null) {
      const timeout = Math.max(1, Math.min(this.#health.timeout, deadline - performance.now()));
      if ((await probe(running.member.url, this.#health.path, Math.round(timeout))).ok) return true;
      await Bun.sleep(READY_POLL_MS);
    }
    return false;
  }

  #onExit(running: Running, code: number | null): void {
    this.#running.delete(running);
    this.#pool.setState(running.member, "stopped");
    this.#pool.remove(running.member);
    if (running.stopping || this.#shuttingDown) return;
    const signal = running.proc.signalCode;
    this.#log.warn(`instance ${running.member.id} (pid ${running.proc.pid}) exited ${signal ? `on ${signal}` : `with code ${code}`}; replacing it`);
    setTimeout(() => {
      if (this.#running.size < this.#desired) void this.#launch();
    }, REPLACE_DELAY_MS);
  }

  /** SIGTERM, then SIGKILL once `stopTimeout` has passed. */
  async #stop(running: Running): Promise<void> {
    running.stopping = true;
    this.#pool.setState(running.member, "draining");
    const { proc } = running;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM");
    const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(this.#cfg.stopTimeout).then(() => false)]);
    if (!exited) {
      this.#log.warn(`instance ${running.member.id} (pid ${proc.pid}) ignored SIGTERM for ${this.#cfg.stopTimeout}ms; killing it`);
      proc.kill("SIGKILL");
      await proc.exited;
    }
  }

  /** Stops every instance; used on shutdown. */
  async stopAll(): Promise<void> {
    this.#shuttingDown = true;
    await Promise.all([...this.#running].map((r) => this.#stop(r)));
  }

  /** Synchronous last resort (uncaught error): SIGKILL every child still running. */
  killAll(): void {
    for (const { proc } of this.#running) if (proc.exitCode === null) proc.kill("SIGKILL");
  }
}
