/**
 * `GET /lb-events`: the dashboard's live feed, as Server-Sent Events
 * (https://html.spec.whatwg.org/multipage/server-sent-events.html).
 *
 *   event: hello   on connect: {interval, capacity, points: the series backlog, status, pid}
 *                  (pid: the process that serves this stream; in a cluster, any of them)
 *   event: tick    once a second: {point: the newest point, status}
 *   event: bye     the balancer is shutting down: {reason}; then the stream ends
 *
 * `status` is the host's `/lb-status` body, serialized once per tick for every
 * subscriber. Shutdown ends every stream at once: an open stream is a request
 * in flight, and would otherwise hold the drain for its whole deadline.
 */
import { SERIES_EVERY_MS, type SeriesPoint, type TrafficSeries } from "../runtime/series.ts";
import type { StatusBody } from "./metrics.ts";

export interface EventFeed {
  readonly series: TrafficSeries;
  /** The host's status body; null while a cluster worker waits for the primary's first. */
  status(): StatusBody | null;
}

/** How long a browser waits before reconnecting after the stream ends (the SSE `retry` field). */
const RETRY_MS = 2000;
/**
 * A subscriber that has not taken this many ticks (its socket is full: a
 * stalled client) is dropped rather than buffered for without end.
 */
const MAX_QUEUED_TICKS = 60;

const encoder = new TextEncoder();

type Stream = ReadableStreamDefaultController<Uint8Array>;

export class EventStreams {
  readonly #feed: EventFeed;
  readonly #open = new Set<Stream>();
  readonly #unsubscribe: () => void;
  #closed = false;

  constructor(feed: EventFeed) {
    this.#feed = feed;
    this.#unsubscribe = feed.series.subscribe((point) => this.#tick(point));
  }

  /** Streams open now. */
  get size(): number {
    return this.#open.size;
  }

  open(req: Request): Response {
    if (this.#closed) {
      return new Response("503 Service Unavailable: shutting down\n", { status: 503, headers: { "retry-after": String(RETRY_MS / 1000), "content-type": "text/plain" } });
    }
    let stream: Stream | undefined;
    const forget = () => {
      if (stream) this.#open.delete(stream);
    };
    const body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          stream = controller;
          this.#open.add(controller);
          const hello = { interval: SERIES_EVERY_MS, capacity: this.#feed.series.capacity, points: this.#feed.series.points, status: this.#feed.status(), pid: process.pid };
          controller.enqueue(encoder.encode(`retry: ${RETRY_MS}\n${message("hello", hello)}`));
        },
        cancel: forget,
      },
      { highWaterMark: 1 },
    );
    req.signal.addEventListener("abort", forget, { once: true });
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        // Tells nginx in front of Fulcrum not to buffer the stream.
        "x-accel-buffering": "no",
      },
    });
  }

  /** Shutdown: every stream gets a `bye` and ends; new ones are refused. */
  close(reason = "the balancer is shutting down"): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    const bye = encoder.encode(message("bye", { reason }));
    for (const stream of this.#open) {
      try {
        stream.enqueue(bye);
        stream.close();
      } catch {
        // Already gone.
      }
    }
    this.#open.clear();
  }

  #tick(point: SeriesPoint): void {
    if (this.#open.size === 0) return;
    const bytes = encoder.encode(message("tick", { point, status: this.#feed.status() }));
    for (const stream of this.#open) {
      try {
        if ((stream.desiredSize ?? 0) < -MAX_QUEUED_TICKS) {
          this.#open.delete(stream);
          stream.close();
        } else stream.enqueue(bytes);
      } catch {
        this.#open.delete(stream);
      }
    }
  }
}

function message(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
