/**
 * The one mutable store of backends. The proxy moves request counters, the
 * health loop and the supervisor move state through the methods here, and
 * strategies read `backends` (a copy-on-write array: a pick never sees it change
 * under its feet). Every state change recomputes `available`.
 */
import type { ResolvedBackend, ResolvedConfig } from "../config/schema.ts";
import { advanceOutlier, type Circuit, isEjected, mayEject, type OpenReason, probePassed, recordOutcome, trialSlots } from "../decide/ejection.ts";
import { nextHealth } from "../decide/health.ts";
import type { BackendSnapshot, BackendState } from "../types.ts";
import { inPanic, type Member, type MemberFields, memberSnapshot, newMember } from "./member.ts";
import { bump, OUT_EJECTIONS, OUT_HEALTH_DOWN, OUT_HEALTH_UP } from "./outcomes.ts";

export type { Member, RemoteCounters } from "./member.ts";

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

/** A request's outcome moved the backend's circuit (for the log line). */
export interface CircuitChange {
  readonly to: Circuit;
  /** When it opened: why, and for how long. */
  readonly reason?: OpenReason;
  readonly openMs?: number;
}

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

  /** `proxy.panicThreshold`: below this share of live backends available, selection spreads over all live ones. */
  #panicThreshold: number;

  constructor(health: ResolvedConfig["health"], processes = 1, panicThreshold = 0) {
    this.#health = health;
    this.#processes = Math.max(1, processes);
    this.#panicThreshold = panicThreshold;
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

  /** Envoy's panic mode (member.ts `inPanic`): selection spreads over every live backend. */
  get panic(): boolean {
    return this.#panic;
  }
  #panic = false;

  /** New rise/fall/circuit settings and panic threshold (config reload). */
  setHealthConfig(health: ResolvedConfig["health"], panicThreshold = this.#panicThreshold): void {
    this.#health = health;
    this.#panicThreshold = panicThreshold;
    this.#updatePanic();
  }

  #updatePanic(): void {
    this.#panic = inPanic(this.#members, this.#panicThreshold);
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
    this.#updatePanic();
    this.onChange();
  }

  setState(member: Member, state: BackendState): void {
    member.state = state;
    if (state === "healthy") member.streak = { healthy: true, count: 0 };
    if (state === "unhealthy") member.streak = { healthy: false, count: 0 };
    this.#refresh(member);
    this.onChange();
  }

  /**
   * Folds one active probe in. A passing probe also turns an open circuit
   * half-open (decide/ejection.ts `probePassed`): active health says whether a
   * backend answers, the circuit only keeps traffic off it until active health
   * has had its say, and the trials then say whether it serves.
   */
  recordProbe(member: Member, ok: boolean): ProbeOutcome {
    if (member.state !== "healthy" && member.state !== "unhealthy") return NO_OUTCOME;
    const before = member.streak.healthy;
    member.streak = nextHealth(member.streak, ok, this.#health);
    const change: HealthChange = member.streak.healthy === before ? undefined : member.streak.healthy ? "up" : "down";
    if (change) {
      member.state = member.streak.healthy ? "healthy" : "unhealthy";
      bump(member.outcomes, change === "up" ? OUT_HEALTH_UP : OUT_HEALTH_DOWN);
    }
    let unejected = false;
    if (ok) {
      unejected = isEjected(member.outlier);
      member.outlier = probePassed(member.outlier);
      // Counted so that cluster workers end their own ejections of this backend too (see `sync`).
      member.probePasses++;
    }
    this.#refresh(member);
    if (change || ok) this.onChange();
    return change || unejected ? { change, unejected } : NO_OUTCOME;
  }

  /** Folds one proxied request's outcome in (failedRequests, the circuit); returns how it moved the circuit, if it did. */
  recordOutcome(member: Member, failed: boolean): CircuitChange | undefined {
    if (failed) member.failedRequests++;
    const eject = this.#health.eject;
    if (eject.errorRate > 0) {
      member.windowRequests++;
      if (failed) member.windowFailures++;
    }
    const before = member.outlier;
    if (!failed && before.consecutiveFailures === 0 && before.circuit === "closed") return undefined; // the common case: nothing to do
    const now = Date.now();
    const open = this.#members.reduce((n, m) => n + (isEjected(m.outlier) ? 1 : 0), 0);
    const live = this.#members.reduce((n, m) => n + (m.state === "stopped" ? 0 : 1), 0);
    const window = { requests: member.windowRequests, failures: member.windowFailures };
    const after = recordOutcome(before, failed, window, eject, now, mayEject(open, live));
    member.outlier = after;
    if (after.circuit === before.circuit) return undefined;
    if (after.circuit === "closed") this.#resetWindow(member, now);
    this.#refresh(member);
    if (after.circuit === "open") bump(member.outcomes, OUT_EJECTIONS);
    else this.onSlotFree(); // closed: its trial limit is gone, a queued request may go
    this.onChange();
    return after.circuit === "open" ? { to: "open", reason: after.reason, openMs: after.openUntil - now } : { to: after.circuit };
  }

  #resetWindow(member: Member, now: number): void {
    member.windowRequests = 0;
    member.windowFailures = 0;
    member.windowStart = now;
  }

  /** A new weight (config reload, shared registry). */
  setWeight(member: Member, weight: number): void {
    member.weight = weight;
    this.onChange();
  }

  /** A managed instance just became ready: slow start runs until `until` (0: none). */
  startWarmup(member: Member, until: number): void {
    member.warmUntil = until;
  }

  /** Its process is gone for good (the supervisor gave up on it). */
  processGone(member: Member): void {
    member.pid = undefined;
    this.setState(member, "failed");
  }

  /** A WebSocket upgrade that never reached the backend: counted as a failed request, not folded into the circuit. */
  countFailedUpgrade(member: Member): void {
    member.failedRequests++;
  }

  /** Peers' verdict on a backend (shared state): true keeps new traffic off it. */
  setPeerDown(member: Member, down: boolean): void {
    if (member.peerDown === down) return;
    member.peerDown = down;
    this.#refresh(member);
    this.onChange();
  }

  observeResponseTime(member: Member, ms: number): void {
    member.latency.observe(ms);
    member.responseTimeMs = member.responseTimeMs === 0 ? ms : member.responseTimeMs + EWMA_ALPHA * (ms - member.responseTimeMs);
  }

  /** Periodic: open circuits whose time is up turn half-open, multipliers decay, error-rate windows roll. Returns backends that turned half-open. */
  tick(now: number): Member[] {
    const eject = this.#health.eject;
    const halfOpened: Member[] = [];
    for (const member of this.#members) {
      const before = member.outlier;
      member.outlier = advanceOutlier(before, eject, now);
      if (now - member.windowStart >= eject.window) this.#resetWindow(member, now);
      if (member.outlier.circuit === before.circuit) continue;
      this.#refresh(member);
      if (member.state === "healthy") halfOpened.push(member);
    }
    if (halfOpened.length > 0) {
      this.onSlotFree();
      this.onChange();
    }
    return halfOpened;
  }

  /** Availability and slots follow state and circuit; `limited` follows the slots. */
  #refresh(member: Member): void {
    const circuit = member.outlier.circuit;
    member.available = member.state === "healthy" && circuit !== "open" && !member.peerDown;
    const slots = circuit === "half-open" ? trialSlots(this.#health.eject.trials, this.#processes, member.configuredSlots) : member.configuredSlots;
    if (slots !== member.slots) {
      member.slots = slots;
      this.#limited = this.#members.some((m) => m.slots > 0);
    }
    this.#updatePanic();
  }

  #add(fields: MemberFields): Member {
    const member = newMember(fields, this.#processes);
    this.#members = [...this.#members, member];
    this.#refresh(member);
    this.#limited = this.#members.some((m) => m.slots > 0);
    this.onChange();
    return member;
  }

  /**
   * A cluster worker's pool follows the primary's: same ids, URLs and states.
   * Request counters and passive ejection stay this process's own.
   */
  sync(snapshots: readonly BackendSnapshot[]): void {
    const byId = new Map(this.#members.map((m) => [m.id, m]));
    const next: Member[] = [];
    for (const s of snapshots) {
      let member = byId.get(s.id);
      if (!member || member.url !== s.url) {
        member = this.#add({ id: s.id, url: s.url, host: s.host, port: s.port, weight: s.weight, maxConnections: s.maxConnections, managed: s.managed, state: s.state });
      }
      // The primary saw it come back or pass a probe: this worker's own ejection of it ends too.
      if ((member.state !== "healthy" && s.state === "healthy") || member.probePasses !== s.probePasses) member.outlier = probePassed(member.outlier);
      member.probePasses = s.probePasses;
      member.state = s.state;
      member.weight = s.weight;
      member.pid = s.pid ?? undefined;
      member.restarts = s.restarts;
      member.warmUntil = s.warmUntil;
      member.peerDown = s.peerDown;
      this.#refresh(member);
      next.push(member);
    }
    this.#members = next;
    this.#limited = next.some((m) => m.slots > 0);
    this.#updatePanic();
  }

  /** What a cluster worker needs of each backend. */
  snapshot(): BackendSnapshot[] {
    return this.#members.map(memberSnapshot);
  }

}
