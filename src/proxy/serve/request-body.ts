/**
 * Watches a request body on its way upstream, for three things the proxy
 * needs to know and Bun does not tell it:
 * - when the client finished sending (the response timeout starts then, as
 *   nginx's proxy_read_timeout does, so a long upload is not a slow backend);
 * - whether the client stalled: Bun 1.4.4 does not reset its idle timer on
 *   body bytes, so Fulcrum turns that timer off for uploads (server.timeout)
 *   and keeps its own, counting only time spent waiting for the client;
 * - whether a failure was the client's (it went away, stalled, or Bun refused
 *   the body as too large), so it never counts against the backend.
 */

export type ClientBodyFailure = "idle" | "error";

/** Chunks read ahead of the upstream: enough that the client and the backend are never in lockstep. */
const READ_AHEAD_CHUNKS = 4;
const IDLE_CHECK_MS = 250;

/** Every watched upload's "waiting for the client since", checked by one shared timer. */
const waiting = new Set<WatchedBody>();
let idleTimer: Timer | undefined;
function watchIdle(body: WatchedBody): void {
  waiting.add(body);
  idleTimer ??= setInterval(() => {
    const now = performance.now();
    for (const b of waiting) b.checkIdle(now);
    if (waiting.size === 0) {
      clearInterval(idleTimer);
      idleTimer = undefined;
    }
  }, IDLE_CHECK_MS);
  idleTimer.unref();
}

export class WatchedBody {
  readonly stream: ReadableStream<Uint8Array>;
  failure: ClientBodyFailure | undefined;
  #ended = false;
  #onEnd: (() => void) | undefined;
  /** performance.now() since when a read from the client is pending; undefined when none is. */
  #waitingSince: number | undefined;
  readonly #idleTimeoutMs: number;
  readonly #reader: ReturnType<ReadableStream<Uint8Array>["getReader"]>;
  #controller: ReadableStreamDefaultController<Uint8Array> | undefined;

  constructor(source: ReadableStream<Uint8Array>, idleTimeoutMs: number) {
    this.#idleTimeoutMs = idleTimeoutMs;
    const reader = (this.#reader = source.getReader());
    this.stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#controller = controller;
          watchIdle(this);
        },
        pull: async (controller) => {
          // The clock runs only while waiting for the client, not while the backend is slow to take data.
          this.#waitingSince = performance.now();
          try {
            const { done, value } = await reader.read();
            this.#waitingSince = undefined;
            if (this.failure) return;
            if (done) {
              controller.close();
              this.#finish();
            } else controller.enqueue(value);
          } catch (error) {
            this.#waitingSince = undefined;
            this.failure ??= "error";
            waiting.delete(this);
            try {
              controller.error(error);
            } catch {
              // already errored by the idle check
            }
          }
        },
        cancel: (reason) => {
          waiting.delete(this);
          return reader.cancel(reason);
        },
      },
      { highWaterMark: READ_AHEAD_CHUNKS },
    );
  }

  /** Called by the shared timer: fails the body if the client has kept us waiting too long. */
  checkIdle(now: number): void {
    if (this.#waitingSince === undefined || now - this.#waitingSince < this.#idleTimeoutMs) return;
    this.failure = "idle";
    waiting.delete(this);
    void this.#reader.cancel(new Error("client stalled"));
    this.#controller?.error(new Error(`client sent no body bytes for ${this.#idleTimeoutMs}ms`));
  }

  /** Calls `callback` once the client has sent its whole body (at once if it already has). */
  whenEnded(callback: () => void): void {
    if (this.#ended) callback();
    else this.#onEnd = callback;
  }

  #finish(): void {
    waiting.delete(this);
    this.#ended = true;
    this.#onEnd?.();
  }
}
