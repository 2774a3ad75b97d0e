/**
 * Managed instances. Each *slot* keeps its id (`i1`) across restarts. The
 * supervisor runs `desired` slots: it launches an instance, routes to it only
 * once its health path answers, restarts one that exits with PM2-style backoff
 * (decide/restart.ts) until it is marked failed, and stops a slot by draining
 * it first (no new requests, in-flight ones finish), then SIGTERM, then SIGKILL
 * after `stopTimeout`. Rolling restarts replace slots one at a time.
 */
import type { ResolvedConfig, ResolvedInstances } from "../config/schema.ts";
import { afterExit, NO_CRASHES, type CrashStreak, type RestartPolicy } from "../decide/restart.ts";
import { chooseVictim } from "../decide/victim.ts";
import type { ChildRegistry } from "./child-registry.ts";
import { Instance } from "./instance.ts";
import type { Logger } from "./log.ts";
import type { Member, Pool } from "./pool.ts";
import { findFreePort, isPortFree } from "./ports.ts";

const DRAIN_POLL_MS = 25;

type Phase = "starting" | "ready" | "backoff" | "failed" | "retiring";

interface Slot {
  readonly id: string;
  phase: Phase;
  instance: Instance | undefined;
  member: Member | undefined;
  streak: CrashStreak;
  restarts: number;
  /** performance.now() when it became ready, for the backoff reset. */
  healthySince: number | null;
  retry: Timer | undefined;
  lastPort: number | undefined;
  /** A rolling restart's extra slot: not counted, never chosen to stop, until it replaces the old one. */
  surge: boolean;
}

export interface SupervisorDeps {
  readonly instances: ResolvedInstances;
  readonly health: ResolvedConfig["health"];
  readonly pool: Pool;
  readonly log: Logger;
  readonly registry: ChildRegistry | undefined;
  readonly restartPolicy: RestartPolicy;
}

export class Supervisor {
  #cfg: ResolvedInstances;
  #health: ResolvedConfig["health"];
  readonly #pool: Pool;
  readonly #log: Logger;
  readonly #registry: ChildRegistry | undefined;
  #policy: RestartPolicy;
  #slots: Slot[] = [];
  readonly #retiring = new Set<Slot>();
  #desired = 0;
  #shuttingDown = false;
  #rolling: Promise<boolean> | undefined;
  readonly #readyWaiters = new Set<() => void>();

  constructor(deps: SupervisorDeps) {
    this.#cfg = deps.instances;
    this.#health = deps.health;
    this.#pool = deps.pool;
    this.#log = deps.log;
    this.#registry = deps.registry;
    this.#policy = deps.restartPolicy;
  }

  get desired(): number {
    return this.#desired;
  }

  get config(): ResolvedInstances {
    return this.#cfg;
  }

  /** Ready instances (taking or able to take traffic). */
  get ready(): number {
    return this.#slots.filter((s) => s.phase === "ready").length;
  }

  /** Whether an instance may become ready soon without anyone asking (starting, or restarting after backoff). */
  get comingUp(): boolean {
    return this.#slots.some((s) => s.phase === "starting" || s.phase === "backoff");
  }

  /** Takes new settings; they apply to instances launched from now on. */
  update(instances: ResolvedInstances, health: ResolvedConfig["health"], policy: RestartPolicy): void {
    this.#cfg = instances;
    this.#health = health;
    this.#policy = policy;
  }

  /** Stops a previous run's leftovers, then starts `min` instances and waits until each is ready or given up on. */
  async start(): Promise<void> {
    const reaped = await this.#registry?.reapLeftovers(this.#cfg.stopTimeout);
    if (reaped) this.#log.info(`stopped ${reaped} instance(s) left over from a previous run`);
    const launches = this.#scale(this.#cfg.min);
    await Promise.all(launches);
  }

  /** Runs `n` instances: launches new slots or drains and stops extra ones. */
  scaleTo(n: number): void {
    void this.#scale(n);
  }

  #scale(n: number): Promise<boolean>[] {
    this.#desired = n;
    const launches: Promise<boolean>[] = [];
    const counted = () => this.#slots.filter((s) => !s.surge);
    while (counted().length < n) {
      const slot = this.#newSlot();
      launches.push(this.#launch(slot));
    }
    while (counted().length > n) {
      const candidates = counted().map((slot) => ({
        slot,
        ready: slot.phase === "ready",
        inflight: slot.member?.inflight ?? 0,
        readySince: slot.healthySince,
      }));
      const victim = (chooseVictim(candidates) as (typeof candidates)[number]).slot;
      this.#slots = this.#slots.filter((s) => s !== victim);
      void this.#retire(victim);
    }
    return launches;
  }

  /** Resolves true as soon as an instance is ready, false after `timeoutMs`. */
  whenReady(timeoutMs: number): Promise<boolean> {
    if (this.ready > 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.#readyWaiters.delete(wake);
        resolve(ok);
      };
      const wake = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.#readyWaiters.add(wake);
    });
  }

  /** Drains and stops one instance for good (`DELETE /lb-admin/backends/<id>`); desired drops by one. */
  async remove(id: string): Promise<boolean> {
    const slot = this.#slots.find((s) => s.id === id);
    if (!slot) return false;
    this.#slots = this.#slots.filter((s) => s !== slot);
    this.#desired = Math.max(0, this.#desired - 1);
    await this.#retire(slot);
    return true;
  }

  /**
   * Replaces every instance, one at a time: start a new one, wait until it is
   * ready, drain the old one, stop it. Stops early (keeping the rest) if a new
   * instance does not become ready. Resolves true when all were replaced.
   */
  rollingRestart(): Promise<boolean> {
    this.#rolling ??= this.#roll().finally(() => {
      this.#rolling = undefined;
    });
    return this.#rolling;
  }

  async #roll(): Promise<boolean> {
    const old = this.#slots.filter((s) => !s.surge);
    this.#log.info(`rolling restart of ${old.length} instance(s)`);
    for (const previous of old) {
      if (this.#shuttingDown) return false;
      if (!this.#slots.includes(previous)) continue; // scaled away meanwhile
      const fresh = this.#newSlot(true);
      if (!(await this.#launch(fresh))) {
        this.#log.error(`rolling restart stopped: the replacement for ${previous.id} did not become ready`);
        this.#slots = this.#slots.filter((s) => s !== fresh);
        await this.#retire(fresh);
        return false;
      }
      fresh.surge = false;
      this.#slots = this.#slots.filter((s) => s !== previous);
      await this.#retire(previous);
    }
    this.#log.info(`rolling restart done: ${old.length} instance(s) replaced`);
    return true;
  }

  #newSlot(surge = false): Slot {
    const slot: Slot = {
      id: this.#pool.nextInstanceId(),
      phase: "starting",
      instance: undefined,
      member: undefined,
      streak: NO_CRASHES,
      restarts: 0,
      healthySince: null,
      retry: undefined,
      lastPort: undefined,
      surge,
    };
    this.#slots.push(slot);
    return slot;
  }

  #choosePort(slot: Slot): number {
    const taken = new Set<number>();
    for (const s of [...this.#slots, ...this.#retiring]) if (s.instance) taken.add(s.instance.port);
    for (const m of this.#pool.backends) taken.add(m.port);
    // The same port again keeps the slot's URL, so `hash` keeps sending it the same clients.
    if (slot.lastPort !== undefined && isPortFree(slot.lastPort)) return slot.lastPort;
    return findFreePort(this.#cfg.basePort, taken);
  }

  /** Starts the slot's instance and waits until it is ready. Resolves true when it is. */
  async #launch(slot: Slot): Promise<boolean> {
    if (this.#shuttingDown || slot.phase === "retiring") return false;
    slot.phase = "starting";
    let instance: Instance;
    try {
      const port = this.#choosePort(slot);
      instance = new Instance({ id: slot.id, command: this.#cfg.command, cwd: this.#cfg.cwd, env: this.#cfg.env, port }, this.#log);
    } catch (error) {
      this.#log.error(`could not start instance ${slot.id} (${this.#cfg.command.join(" ")}): ${error instanceof Error ? error.message : String(error)}`);
      this.#afterDeath(slot);
      return false;
    }
    this.#registry?.add(instance.pid);
    slot.instance = instance;
    slot.lastPort = instance.port;
    slot.member = this.#pool.addManaged(slot.id, instance.port, instance.pid, slot.restarts, this.#cfg.maxConnections);
    this.#log.info(`instance ${slot.id} starting on port ${instance.port} (pid ${instance.pid})`);
    void instance.exited.then(() => this.#onExit(slot, instance));

    const stillWanted = () => slot.instance === instance && slot.phase !== "retiring" && !this.#shuttingDown;
    const ready = await instance.waitReady(this.#health.path, this.#cfg.startTimeout, this.#health.timeout, stillWanted);
    if (!stillWanted()) return false;
    if (!ready) {
      if (instance.running) {
        this.#log.error(`instance ${slot.id} did not answer ${this.#health.path} within ${this.#cfg.startTimeout}ms; stopping it`);
        await instance.stop(this.#cfg.stopTimeout); // #onExit counts it as a quick death
      }
      return false;
    }
    slot.phase = "ready";
    slot.healthySince = performance.now();
    const member = slot.member;
    this.#pool.startWarmup(member, this.#cfg.slowStart > 0 ? Date.now() + this.#cfg.slowStart : 0);
    this.#pool.setState(member, "healthy");
    this.#log.info(`instance ${slot.id} ready on port ${instance.port}`);
    for (const wake of this.#readyWaiters) wake();
    return true;
  }

  #onExit(slot: Slot, instance: Instance): void {
    this.#registry?.remove(instance.pid);
    if (slot.instance !== instance) return;
    slot.instance = undefined;
    if (slot.phase === "retiring" || this.#shuttingDown) return;
    this.#log.warn(`instance ${slot.id} (pid ${instance.pid}) exited ${instance.exitDescription}`);
    this.#afterDeath(slot);
  }

  /** An instance died on its own (or never started): back off and restart, or give up. */
  #afterDeath(slot: Slot): void {
    const healthyFor = slot.healthySince === null ? 0 : performance.now() - slot.healthySince;
    slot.healthySince = null;
    const next = afterExit(slot.streak, healthyFor, this.#policy);
    slot.streak = next.streak;
    if (next.kind === "failed") {
      slot.phase = "failed";
      if (slot.member) this.#pool.processGone(slot.member);
      this.#log.error(
        `instance ${slot.id} failed: ${next.streak.crashes} quick deaths in a row; not restarting it (POST /lb-admin/restart or SIGUSR2 to try again)`,
      );
      return;
    }
    slot.phase = "backoff";
    if (slot.member) this.#pool.setState(slot.member, "stopped");
    this.#log.info(`restarting instance ${slot.id} in ${next.delay}ms (restart ${slot.restarts + 1})`);
    slot.retry = setTimeout(() => {
      slot.retry = undefined;
      if (slot.phase !== "backoff" || !this.#slots.includes(slot)) return;
      slot.restarts++;
      void this.#launch(slot);
    }, next.delay);
  }

  /** Drain (no new requests, in-flight ones finish, bounded by stopTimeout), then stop. */
  async #retire(slot: Slot): Promise<void> {
    slot.phase = "retiring";
    clearTimeout(slot.retry);
    this.#retiring.add(slot);
    const { member, instance } = slot;
    if (member && member.state !== "stopped" && member.state !== "failed") await this.#pool.drain(member, this.#cfg.stopTimeout);
    if (instance) {
      const polite = await instance.stop(this.#cfg.stopTimeout);
      if (!polite) this.#log.warn(`instance ${slot.id} (pid ${instance.pid}) ignored SIGTERM for ${this.#cfg.stopTimeout}ms; killed it`);
      this.#log.info(`instance ${slot.id} stopped`);
    }
    if (member) {
      this.#pool.setState(member, "stopped");
      this.#pool.remove(member);
    }
    this.#retiring.delete(slot);
  }

  /** Stops every instance; used on shutdown, after client traffic has drained. */
  async stopAll(): Promise<void> {
    this.#shuttingDown = true;
    const all = [...this.#slots, ...this.#retiring];
    this.#slots = [];
    await Promise.all(all.map((slot) => (slot.phase === "retiring" ? settle(slot) : this.#retire(slot))));
    this.#registry?.clear();
  }

  /** Synchronous last resort (uncaught error): SIGKILL every instance still running. */
  killAll(): void {
    for (const slot of [...this.#slots, ...this.#retiring]) slot.instance?.kill();
  }
}

async function settle(slot: Slot): Promise<void> {
  while (slot.instance?.running) await Bun.sleep(DRAIN_POLL_MS);
}
