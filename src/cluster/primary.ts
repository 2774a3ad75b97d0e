/**
 * The primary of a cluster (`cluster.workers` > 1), as an nginx master: it
 * runs the full balancer itself (probes, instances, autoscaling, admin) and
 * `workers - 1` worker processes on the same port (SO_REUSEPORT spreads
 * connections). It restarts a worker that dies, tells workers the pool on every
 * change, the status every 250 ms and each point of the dashboard's series,
 * sums their request counters into load and /lb-status, and answers their
 * admin requests and cold starts.
 */
import type { Subprocess } from "bun";
import { type Circuit, worseCircuit } from "../decide/ejection.ts";
import type { StatusBackend } from "../http/status.ts";
import { sumLatency } from "../runtime/latency.ts";
import type { Logger } from "../runtime/log.ts";
import type { Pool } from "../runtime/pool.ts";
import type { TrafficSeries } from "../runtime/series.ts";
import { counterGrowth, listGrowth } from "./counters.ts";
import { addCounts, EDGE_COUNT_NAMES } from "../runtime/outcomes.ts";
import { WORKER_ENV, WORKER_PORT_ENV, type AdminReply, type Counters, type EdgeReport, type ToPrimary, type ToWorker } from "./protocol.ts";

const STATUS_EVERY_MS = 250;
const RESTART_DELAY_MS = 1000;

/** What the primary does for workers; the balancer provides it. */
export interface PrimaryServices {
  readonly pool: Pool;
  /** The dashboard's series: workers get its backlog when they start, then each new point. */
  readonly series: TrafficSeries;
  status(): unknown;
  admin(req: Request, path: string): Promise<Response>;
  coldStart(): Promise<boolean>;
}

interface WorkerProcess {
  readonly index: number;
  proc: Subprocess;
  /** Its latest counters (totals since it started), by backend id. */
  counters: Map<string, Counters>;
  /** Its latest edge report. */
  edge: EdgeReport | undefined;
}

/** How to start this same program again: `bun run src/main.ts ARGS`, or the compiled binary with ARGS. */
function ownCommand(): string[] {
  const compiled = Bun.main.startsWith("/$bunfs/");
  return compiled ? [process.execPath, ...process.argv.slice(2)] : [process.execPath, ...process.argv.slice(1)];
}

export class ClusterPrimary {
  readonly #services: PrimaryServices;
  readonly #log: Logger;
  readonly #port: number;
  readonly #workers: WorkerProcess[] = [];
  readonly #statusTimer: Timer;
  readonly #unsubscribeSeries: () => void;
  /** Edge counters reported by workers, summed. */
  #remoteEdge: number[] = new Array<number>(EDGE_COUNT_NAMES.length).fill(0);
  #stopping = false;
  #poolQueued = false;

  constructor(count: number, port: number, services: PrimaryServices, log: Logger) {
    this.#services = services;
    this.#log = log;
    this.#port = port;
    for (let index = 1; index < count; index++) this.#spawn(index);
    services.pool.onChange = () => this.#queuePoolBroadcast();
    this.#statusTimer = setInterval(() => this.#broadcast({ type: "status", body: services.status() }), STATUS_EVERY_MS);
    this.#unsubscribeSeries = services.series.subscribe((point) => this.#broadcast({ type: "series", points: [point] }));
  }

  /** Workers and their request totals, for /lb-status. */
  workers(): { index: number; pid: number; totalRequests: number }[] {
    return this.#workers.map((w) => ({
      index: w.index,
      pid: w.proc.pid,
      totalRequests: [...w.counters.values()].reduce((sum, c) => sum + c[2], 0),
    }));
  }

  /** Tells every worker to read the config again. */
  reload(): void {
    this.#broadcast({ type: "reload" });
  }

  /** SIGTERM every worker (each drains its own requests) and wait for them, up to `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#statusTimer);
    this.#unsubscribeSeries();
    for (const w of this.#workers) w.proc.kill("SIGTERM");
    const exited = Promise.all(this.#workers.map((w) => w.proc.exited));
    if (!(await Promise.race([exited.then(() => true), Bun.sleep(graceMs).then(() => false)]))) {
      for (const w of this.#workers) w.proc.kill("SIGKILL");
      await exited;
    }
  }

  /** Synchronous last resort. */
  killAll(): void {
    for (const w of this.#workers) w.proc.kill("SIGKILL");
  }

  #spawn(index: number): void {
    const worker: WorkerProcess = { index, proc: undefined as unknown as Subprocess, counters: new Map(), edge: undefined };
    worker.proc = Bun.spawn(ownCommand(), {
      env: { ...process.env, [WORKER_ENV]: String(index), [WORKER_PORT_ENV]: String(this.#port) },
      stdin: "ignore",
      stdout: "inherit",
      stderr: "inherit",
      serialization: "json",
      ipc: (message) => this.#onMessage(worker, message as ToPrimary),
    });
    const existing = this.#workers.findIndex((w) => w.index === index);
    if (existing >= 0) this.#workers[existing] = worker;
    else this.#workers.push(worker);
    this.#log.info(`worker ${index} started (pid ${worker.proc.pid})`);
    worker.proc.send({ type: "pool", backends: this.#services.pool.snapshot() } satisfies ToWorker);
    worker.proc.send({ type: "series", points: [...this.#services.series.points] } satisfies ToWorker);
    void worker.proc.exited.then((code) => {
      this.#dropCounters(worker);
      if (this.#stopping) return;
      this.#log.warn(`worker ${index} (pid ${worker.proc.pid}) exited ${worker.proc.signalCode ? `on ${worker.proc.signalCode}` : `with code ${code}`}; restarting it`);
      setTimeout(() => {
        if (!this.#stopping) this.#spawn(index);
      }, RESTART_DELAY_MS);
    });
  }

  #onMessage(worker: WorkerProcess, message: ToPrimary): void {
    switch (message.type) {
      case "counters":
        this.#applyCounters(worker, message.counters);
        this.#applyEdge(worker, message.edge);
        return;
      case "coldStart":
        void this.#services.coldStart().then((ready) => this.#reply(worker, message.id, ready));
        return;
      case "admin": {
        const headers = message.authorization ? { authorization: message.authorization } : undefined;
        const init = { method: message.method, headers, body: message.body === "" ? undefined : message.body };
        void this.#services
          .admin(new Request(`http://primary${message.path}`, init), message.path)
          .then(async (res): Promise<AdminReply> => ({ status: res.status, headers: [...res.headers], body: await res.text() }))
          .then((reply) => this.#reply(worker, message.id, reply));
        return;
      }
    }
  }

  #reply(worker: WorkerProcess, id: number, result: unknown): void {
    if (worker.proc.exitCode === null) worker.proc.send({ type: "reply", id, result } satisfies ToWorker);
  }

  /**
   * A worker reports totals since it started; what they grew by since its
   * last report is added to each backend's `remote` totals (counters.ts says
   * why). `inflight` is a gauge: the sum of the workers' latest.
   */
  #applyCounters(worker: WorkerProcess, counters: Counters[]): void {
    const previous = worker.counters;
    worker.counters = new Map(counters.map((c) => [c[0], c]));
    for (const current of counters) {
      const member = this.#services.pool.get(current[0]);
      if (!member) continue;
      const growth = counterGrowth(previous.get(current[0]), current);
      member.remote.total += growth.total;
      member.remote.failed += growth.failed;
      member.remote.latency.add(growth.latencyCounts, growth.latencySumMs);
      member.remote.outcomes.splice(0, growth.outcomes.length, ...addCounts(member.remote.outcomes, growth.outcomes));
    }
    this.#sumInflight();
  }

  /** Edge counters grow like backend counters; connections and WebSockets are gauges (the latest). */
  #applyEdge(worker: WorkerProcess, edge: EdgeReport): void {
    const growth = listGrowth(worker.edge?.counts, edge.counts);
    this.#remoteEdge = addCounts(this.#remoteEdge, growth);
    worker.edge = edge;
  }

  /** The workers' share of the edge's facts: counters since they started (never going backwards), gauges as they are. */
  edge(): { counts: readonly number[]; connections: number | null; webSockets: number; queued: number } {
    let connections: number | null = null;
    let webSockets = 0;
    let queued = 0;
    for (const w of this.#workers) {
      if (w.edge?.connections != null) connections = (connections ?? 0) + w.edge.connections;
      webSockets += w.edge?.webSockets ?? 0;
      queued += w.edge?.queued ?? 0;
    }
    return { counts: this.#remoteEdge, connections, webSockets, queued };
  }

  #dropCounters(worker: WorkerProcess): void {
    worker.counters = new Map();
    this.#sumInflight();
  }

  /** The host's view of each backend: this process's counters plus the workers'. */
  hostBackends(): StatusBackend[] {
    return this.#services.pool.backends.map((b) => ({
      ...b,
      // The workers route, so their circuits are the ones that matter: the worst one shows.
      circuit: worseCircuit(b.outlier.circuit, b.remote.circuit),
      available: b.available && b.remote.circuit !== "open",
      inflight: b.inflight + b.remote.inflight,
      totalRequests: b.totalRequests + b.remote.total,
      failedRequests: b.failedRequests + b.remote.failed,
      latency: sumLatency(b.latency, b.remote.latency),
      outcomes: addCounts(b.outcomes, b.remote.outcomes),
    }));
  }

  /** Gauges: in flight summed over the workers; the circuit, the worst any worker has (open, then half-open). */
  #sumInflight(): void {
    for (const member of this.#services.pool.backends) {
      let inflight = 0;
      let circuit: Circuit = "closed";
      for (const w of this.#workers) {
        const counters = w.counters.get(member.id);
        inflight += counters?.[1] ?? 0;
        circuit = worseCircuit(circuit, counters?.[7] ?? "closed");
      }
      member.remote.inflight = inflight;
      member.remote.circuit = circuit;
    }
  }

  /** Many changes in one turn (a reload, a scale-up) make one message. */
  #queuePoolBroadcast(): void {
    if (this.#poolQueued) return;
    this.#poolQueued = true;
    queueMicrotask(() => {
      this.#poolQueued = false;
      this.#broadcast({ type: "pool", backends: this.#services.pool.snapshot() });
    });
  }

  #broadcast(message: ToWorker): void {
    for (const w of this.#workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.send(message);
  }
}

