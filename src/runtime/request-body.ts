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

export class WatchedBody {
  readonly stream: ReadableStream<Uint8Array>;
  failure: ClientBodyFailure | undefined;
  #ended = false;
  #onEnd: (() => void) | undefined;

  constructor(source: ReadableStream<Uint8Array>, idleTimeoutMs: number) {
    const reader = source.getReader();
    this.stream = new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          // The clock runs only while waiting for the client, not while the backend is slow to take data.
          const timer = setTimeout(() => {
            this.failure = "idle";
            void reader.cancel(new Error("client stalled"));
            controller.error(new Error(`client sent no body bytes for ${idleTimeoutMs}ms`));
          }, idleTimeoutMs);
          try {
            const { done, value } = await reader.read();
            if (this.failure) return;
            if (done) {
              controller.close();
              this.#end();
            } else controller.enqueue(value);
          } catch (error) {
            this.failure ??= "error";
            try {
              controller.error(error);
            } catch {
              // already errored by the idle timer
            }
          } finally {
            clearTimeout(timer);
          }
        },
        cancel: (reason) => reader.cancel(reason),
      },
      { highWaterMark: 0 },
    );
  }

  /** Calls `callback` once the client has sent its whole body (at once if it already has). */
  whenEnded(callback: () => void): void {
    if (this.#ended) callback();
    else this.#onEnd = callback;
  }

  #end(): void {
    this.#ended = true;
    this.#onEnd?.();
  }
}
