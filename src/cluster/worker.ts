/**
 * A worker of a cluster: it proxies requests on the shared port with a pool
 * that follows the primary's (see primary.ts). It runs no probes, instances or
 * autoscaler; it reports its request counters every 100 ms, answers
 * /lb-status with the primary's latest (and /lb-events with a copy of the
 * primary's series), and hands admin requests and cold starts to the primary. If the primary goes away, so does the worker.
 */
import type { StatusBody } from "../http/metrics.ts";
import type { Pool } from "../runtime/pool.ts";
import type { TrafficSeries } from "../runtime/series.ts";
import type { AdminReply, Counters, EdgeReport, ToPrimary, ToWorker } from "./protocol.ts";
import { edgeCounts, type EdgeStats } from "../runtime/outcomes.ts";

const COUNTERS_EVERY_MS = 100;
/** An admin request or cold start the primary does not answer within this is given up. */
const REPLY_TIMEOUT_MS = 60_000;

export class ClusterWorker {
  readonly index: number;
  readonly #stats: EdgeStats;
  readonly #pool: Pool;
  #status: StatusBody | null = null;
  #nextId = 1;
  readonly #waiting = new Map<number, (result: unknown) => void>();
  readonly #timer: Timer;

  constructor(index: number, pool: Pool, series: TrafficSeries, stats: EdgeStats, hooks: { onReload: () => void; onPrimaryGone: () => void }) {
    this.index = index;
    this.#pool = pool;
    this.#stats = stats;
    process.on("message", (message: ToWorker) => {
      switch (message.type) {
        case "pool":
          pool.sync(message.backends);
          return;
        case "status":
          this.#status = message.body as StatusBody;
          return;
        case "reload":
          hooks.onReload();
          return;
        case "series":
          for (const point of message.points) series.push(point);
          return;
        case "reply":
          this.#waiting.get(message.id)?.(message.result);
          this.#waiting.delete(message.id);
          return;
      }
    });
    process.on("disconnect", hooks.onPrimaryGone);
    this.#timer = setInterval(() => this.#send({ type: "counters", counters: this.#counters(), edge: this.#edge() }), COUNTERS_EVERY_MS);
  }

  /** The primary's latest /lb-status body (null until the first arrives). */
  get status(): StatusBody | null {
    return this.#status;
  }

  coldStart(): Promise<boolean> {
    return this.#ask((id) => ({ type: "coldStart", id })).then((ready) => ready === true);
  }

  async admin(req: Request, path: string): Promise<Response> {
    const body = req.method === "GET" || req.method === "HEAD" ? "" : await req.text();
    const reply = (await this.#ask((id) => ({ type: "admin", id, method: req.method, path, authorization: req.headers.get("authorization"), body }))) as AdminReply | null;
    if (!reply) return Response.json({ error: "the primary process did not answer" }, { status: 503 });
    return new Response(reply.body, { status: reply.status, headers: reply.headers });
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #counters(): Counters[] {
    return this.#pool.backends.map((m) => [m.id, m.inflight, m.totalRequests, m.failedRequests, m.latency.sumMs, m.latency.counts, m.outcomes, m.outlier.circuit]);
  }

  #edge(): EdgeReport {
    const stats = this.#stats;
    return { counts: edgeCounts(stats), connections: stats.connections(), webSockets: stats.openWebSockets, queued: stats.queued() };
  }

  #ask(message: (id: number) => ToPrimary): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        resolve(null);
      }, REPLY_TIMEOUT_MS);
      this.#waiting.set(id, (result) => {
        clearTimeout(timer);
        resolve(result);
      });
      this.#send(message(id));
    });
  }

  #send(message: ToPrimary): void {
    if (process.connected) process.send?.(message);
  }
}
