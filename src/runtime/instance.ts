/**
 * One managed process: spawned in its own process group (so a terminal's
 * Ctrl-C reaches Fulcrum, which drains first, and not the instances directly;
 * and so stopping it also stops anything it started), output logged line by
 * line with its id, stopped with SIGTERM then SIGKILL.
 */
import type { Subprocess } from "bun";
import { forEachLine } from "./lines.ts";
import type { Logger } from "./log.ts";
import { probe } from "./prober.ts";

const READY_POLL_MS = 100;

/** In a `bun build --compile` binary, `process.execPath` is Fulcrum itself; BUN_BE_BUN makes it act as `bun`. */
const COMPILED = Bun.main.startsWith("/$bunfs/");

export interface InstanceSpec {
  readonly id: string;
  readonly command: readonly string[];
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  readonly port: number;
}

export class Instance {
  readonly id: string;
  readonly port: number;
  readonly pid: number;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  readonly #proc: Subprocess<"ignore", "pipe", "pipe">;

  constructor(spec: InstanceSpec, log: Logger) {
    const command = [...spec.command, "--port", String(spec.port)];
    const env: Record<string, string | undefined> = { ...process.env, ...spec.env, PORT: String(spec.port) };
    if (COMPILED && command[0] === process.execPath) env.BUN_BE_BUN = "1";
    this.#proc = Bun.spawn(command, { cwd: spec.cwd, env, stdin: "ignore", stdout: "pipe", stderr: "pipe", detached: true });
    this.id = spec.id;
    this.port = spec.port;
    this.pid = this.#proc.pid;
    this.exited = this.#proc.exited.then((code) => (this.#proc.signalCode ? null : code));
    void forEachLine(this.#proc.stdout, (line) => log.instance(spec.id, "stdout", line));
    void forEachLine(this.#proc.stderr, (line) => log.instance(spec.id, "stderr", line));
  }

  get running(): boolean {
    return this.#proc.exitCode === null && this.#proc.signalCode === null;
  }

  /** How it ended: `code 1`, `SIGKILL`. */
  get exitDescription(): string {
    return this.#proc.signalCode ? `on ${this.#proc.signalCode}` : `with code ${this.#proc.exitCode}`;
  }

  /**
   * Polls the health path until it answers 2xx/3xx (true), or until
   * `startTimeout` passes, the process exits or `stillWanted()` turns false (false).
   */
  async waitReady(path: string, startTimeout: number, probeTimeout: number, stillWanted: () => boolean): Promise<boolean> {
    const deadline = performance.now() + startTimeout;
    while (performance.now() < deadline && this.running && stillWanted()) {
      const timeout = Math.round(Math.max(1, Math.min(probeTimeout, deadline - performance.now())));
      if ((await probe(`http://127.0.0.1:${this.port}`, path, timeout)).ok) return true;
      await Bun.sleep(READY_POLL_MS);
    }
    return false;
  }

  /** Signals the whole process group (the instance and anything it started). */
  signal(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      // The group is gone already; try the process itself in case it left its group.
      if (this.running) this.#proc.kill(signal);
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Resolves `true` if it stopped on SIGTERM. */
  async stop(graceMs: number): Promise<boolean> {
    if (!this.running) return true;
    this.signal("SIGTERM");
    const polite = await Promise.race([this.exited.then(() => true), Bun.sleep(graceMs).then(() => false)]);
    if (!polite) {
      this.signal("SIGKILL");
      await this.exited;
    }
    return polite;
  }

  /** Synchronous last resort. */
  kill(): void {
    if (this.running) this.signal("SIGKILL");
  }
}
