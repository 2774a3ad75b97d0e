/**
 * The one mutable store of backends. The proxy moves request counters, the
 * health loop and the supervisor move state through the methods here, and
 * strategies read `backends` (a copy-on-write array: a pick never sees it change
 * under its feet). Every state change recomputes `available`.
 */
import type { ResolvedBackend, ResolvedConfig } from "../config/schema.ts";
import { decayOutlier, endEjection, FRESH_OUTLIER, isEjected, mayEject, recordOutcome, type Outlier } from "../decide/ejection.ts";
import { nextHealth, type ProbeStreak } from "../decide/health.ts";
import type { Backend, BackendSnapshot, BackendState } from "../types.ts";
import { LatencyHistogram } from "./latency.ts";
import { bump, newBackendOutcomes, OUT_EJECTIONS, OUT_HEALTH_DOWN, OUT_HEALTH_UP } from "./outcomes.ts";

/** Backend plus the bookkeeping only the pool touches. */
export interface Member extends Backend {
  streak: ProbeStreak;
  outlier: Outlier;
  /** Set once the first probe result was logged, so startup shows each backend's health once. */
  probed: boolean;
  /** Active probes that passed so far (a worker ends its passive ejection when the primary's count moves). */
  probePasses: number;
  /** Time to response headers of every response from this backend (this process's). */
  readonly latency: LatencyHistogram;
  /** This process's outcome counters for the backend, indexed by BACKEND_OUTCOMES (runtime/outcomes.ts). */
  readonly outcomes: number[];
  /** In a cluster's primary: the workers' counters for this backend, summed (see cluster/primary.ts). */
  readonly remote: RemoteCounters;
}

/** The workers' share of a backend's counters. Totals only grow while the member exists; `inflight` is their latest sum. */
export interface RemoteCounters {
  inflight: number;
  total: number;
  failed: number;
  readonly latency: LatencyHistogram;
  readonly outcomes: number[];
}

/** Weight of the newest response time in the EWMA (about the last 10 responses). */
const EWMA_ALPHA = 0.2;

export type HealthChange = "up" | "down" | undefined;

export interface ProbeOutcome {
  /** The probe moved the backend between healthy and unhealthy. */
  readonly change: HealthChange;
  /** The probe passed while the backend was passively ejected, and ended that ejection. */
  readonly unejected: boolean;
}

const NO_OUTCOME: ProbeOutcome = { change: undefined, unejected: false };

export class Pool {
  #members: Member[] = [];
  /** Called after anything that changes membership, state or availability (a cluster primary broadcasts it). */
  onChange: () => void = () => {};
  #nextStatic = 1;
  #nextManaged = 1;
  #health: ResolvedConfig["health"];

  /** Processes sharing the backends (cluster.workers): each gets its share of a backend's maxConnections. */
  readonly #processes: number;
  /** Told when a limited backend's slot frees up (a queued request can go). */
  onSlotFree: () => void = () => {};

  constructor(health: ResolvedConfig["health"], processes = 1) {
    this.#health = health;
    this.#processes = Math.max(1, processes);
  }

  /** A request (or WebSocket) starts on `member`. */
  begin(member: Member): void {
    member.inflight++;
    member.totalRequests++;
  }

  /** It ended (answered, failed or abandoned): its slot is free again. */
  release(member: Member): void {
    member.inflight--;
    if (member.slots > 0) this.onSlotFree();
  }

  /** Some backend has a limit (`maxConnections`): selection must skip full ones. */
  get limited(): boolean {
    return this.#limited;
  }
  #limited = false;

  /** New rise/fall/ejection settings (config reload). */
  setHealthConfig(health: ResolvedConfig["health"]): void {
    this.#health = health;
  }

  /**
   * Stops new traffic to `member` and waits (up to `timeoutMs`) for its
   * requests in flight to finish. Resolves with how many were still in flight.
   */
  async drain(member: Member, timeoutMs: number): Promise<number> {
    this.setState(member, "draining");
    const deadline = performance.now() + timeoutMs;
    while (member.inflight > 0 && performance.now() < deadline) await Bun.sleep(25);
    return member.inflight;
  }

  get backends(): readonly Member[] {
    return this.#members;
  }

  get(id: string): Member | undefined {
    return this.#members.find((m) => m.id === id);
  }

  /** Static backends start healthy, as in nginx and HAProxy: the first probe runs at once. */
  addStatic({ url, host, port, weight, maxConnections }: ResolvedBackend): Member {
    return this.#add({ id: `b${this.#nextStatic++}`, url, host, port, weight, maxConnections, managed: false, state: "healthy" });
  }

  /** A fresh id for a managed instance slot (kept across its restarts). */
  nextInstanceId(): string {
    return `i${this.#nextManaged++}`;
  }

  /**
   * Managed instances start in `starting` and take traffic once ready. A
   * restarted instance keeps its slot's id and replaces the member that had it.
   */
  addManaged(id: string, port: number, pid: number | undefined, restarts: number, maxConnections = 0): Member {
    const previous = this.get(id);
    if (previous) this.remove(previous);
    const host = `127.0.0.1:${port}`;
    const member = this.#add({ id, url: `http://${host}`, host, port, weight: 1, maxConnections, managed: true, state: "starting" });
    member.pid = pid;
    member.restarts = restarts;
    return member;
  }

  remove(member: Member): void {
    this.#members = this.#members.filter((m) => m !== member);
    this.#limited = this.#members.some((m) => m.slots > 0);
    this.onChange();
  }

  setState(member: Member, state: BackendState): void {
    member.state = state;
    if (state === "healthy") member.streak = { healthy: true, count: 0 };
    if (state === "unhealthy") member.streak = { healthy: false, count: 0 };
    this.#refresh(member, Date.now());
    this.onChange();
  }

  /**
   * Folds one active probe in. A passing probe also ends a passive ejection
   * (decide/ejection.ts `endEjection`): active health says whether a backend
   * answers, passive ejection only keeps traffic off it until active health
   * has had its say.
   */
  recordProbe(member: Member, ok: boolean): ProbeOutcome {
    if (member.state !== "healthy" && member.state !== "unhealthy") return NO_OUTCOME;
    const now = Date.now();
    const before = member.streak.healthy;
    member.streak = nextHealth(member.streak, ok, this.#health);
    const change: HealthChange = member.streak.healthy === before ? undefined : member.streak.healthy ? "up" : "down";
    if (change) {
      member.state = member.streak.healthy ? "healthy" : "unhealthy";
      bump(member.outcomes, change === "up" ? OUT_HEALTH_UP : OUT_HEALTH_DOWN);
    }
    let unejected = false;
    if (ok) {
      unejected = isEjected(member.outlier, now);
      member.outlier = endEjection(member.outlier);
      // Counted so that cluster workers end their own ejections of this backend too (see `sync`).
      member.probePasses++;
    }
    this.#refresh(member, now);
    if (change || ok) this.onChange();
    return change || unejected ? { change, unejected } : NO_OUTCOME;
  }

  /** Folds one proxied request's outcome in; returns true when it ejected the backend. */
  recordOutcome(member: Member, failed: boolean): boolean {
    if (!failed && member.outlier.consecutiveFailures === 0) return false; // the common case: nothing to do
    const now = Date.now();
    const wasEjected = isEjected(member.outlier, now);
    const ejectedCount = this.#members.reduce((n, m) => n + (isEjected(m.outlier, now) ? 1 : 0), 0);
    const live = this.#members.reduce((n, m) => n + (m.state === "stopped" ? 0 : 1), 0);
    member.outlier = recordOutcome(member.outlier, failed, this.#health.eject, now, mayEject(ejectedCount, live));
    const ejected = !wasEjected && isEjected(member.outlier, now);
    if (ejected) {
      this.#refresh(member, now);
      bump(member.outcomes, OUT_EJECTIONS);
    }
    return ejected;
  }

  observeResponseTime(member: Member, ms: number): void {
    member.latency.observe(ms);
    member.responseTimeMs = member.responseTimeMs === 0 ? ms : member.responseTimeMs + EWMA_ALPHA * (ms - member.responseTimeMs);
  }

  /** Periodic: ends expired ejections and lets multipliers decay. Returns backends that came back. */
  tick(now: number): Member[] {
    const released: Member[] = [];
    for (const member of this.#members) {
      member.outlier = decayOutlier(member.outlier, this.#health.eject, now);
      const wasAvailable = member.available;
      this.#refresh(member, now);
      if (!wasAvailable && member.available && member.state === "healthy") released.push(member);
    }
    if (released.length > 0) this.onChange();
    return released;
  }

  #refresh(member: Member, now: number): void {
    member.available = member.state === "healthy" && !isEjected(member.outlier, now);
  }

  #add(fields: Pick<Member, "id" | "url" | "host" | "port" | "weight" | "maxConnections" | "managed" | "state">): Member {
    const member: Member = {
      ...fields,
      slots: fields.maxConnections > 0 ? Math.max(1, Math.ceil(fields.maxConnections / this.#processes)) : 0,
      pid: undefined,
      available: false,
      inflight: 0,
      totalRequests: 0,
      failedRequests: 0,
      responseTimeMs: 0,
      load: 0,
      restarts: 0,
      warmUntil: 0,
      latency: new LatencyHistogram(),
      outcomes: newBackendOutcomes(),
      remote: { inflight: 0, total: 0, failed: 0, latency: new LatencyHistogram(), outcomes: newBackendOutcomes() },
      streak: { healthy: fields.state === "healthy", count: 0 },
      outlier: FRESH_OUTLIER,
      probed: false,
      probePasses: 0,
    };
    this.#refresh(member, Date.now());
    this.#members = [...this.#members, member];
    this.#limited = this.#members.some((m) => m.slots > 0);
    this.onChange();
    return member;
  }

  /**
   * A cluster worker's pool follows the primary's: same ids, URLs and states.
   * Request counters and passive ejection stay this process's own.
   */
  sync(snapshots: readonly BackendSnapshot[]): void {
    const now = Date.now();
    const byId = new Map(this.#members.map((m) => [m.id, m]));
    const next: Member[] = [];
    for (const s of snapshots) {
      let member = byId.get(s.id);
      if (!member || member.url !== s.url) {
        member = this.#add({ id: s.id, url: s.url, host: s.host, port: s.port, weight: s.weight, maxConnections: s.maxConnections, managed: s.managed, state: s.state });
      }
      // The primary saw it come back or pass a probe: this worker's own ejection of it ends too.
      if ((member.state !== "healthy" && s.state === "healthy") || member.probePasses !== s.probePasses) member.outlier = endEjection(member.outlier);
      member.probePasses = s.probePasses;
      member.state = s.state;
      member.weight = s.weight;
      member.pid = s.pid ?? undefined;
      member.restarts = s.restarts;
      member.warmUntil = s.warmUntil;
      this.#refresh(member, now);
      next.push(member);
    }
    this.#members = next;
    this.#limited = next.some((m) => m.slots > 0);
  }

  /** What a cluster worker needs of each backend. */
  snapshot(): BackendSnapshot[] {
    return this.#members.map((m) => ({
      id: m.id,
      url: m.url,
      host: m.host,
      port: m.port,
      weight: m.weight,
      managed: m.managed,
      state: m.state,
      pid: m.pid ?? null,
      restarts: m.restarts,
      warmUntil: m.warmUntil,
      probePasses: m.probePasses,
      maxConnections: m.maxConnections,
    }));
  }
}
