/**
 * How a request reaches a backend. Two transports behind one interface:
 * `fetch` (Bun's fetch(): the design's default path) and `http1` (Fulcrum's
 * own pooled HTTP/1.1 client over Bun.connect, see http1.ts). Both reject with
 * errors `decide/retry.ts` classifies the same way.
 */
import type { BackendView } from "../../types.ts";

export interface UpstreamRequest {
  readonly method: string;
  /** Path and query, as the client sent them. */
  readonly path: string;
  /** Already forwarded: hop-by-hop removed, X-Forwarded-* and Host set. */
  readonly headers: Headers;
  /** A stream, a buffered (replayable) body, or none. */
  readonly body: ReadableStream<Uint8Array> | ArrayBuffer | null;
  /** Cancels the request: client gone, or the response timeout. */
  readonly cancel: Cancellation;
}

/**
 * A cancellation with a single subscriber, instead of an AbortSignal: adding
 * and removing an event listener on a fresh AbortSignal for every request cost
 * the http1 transport about 10 µs of CPU per request (measured); this costs an
 * assignment. `fetch()` still gets a real AbortSignal, bridged in fetchTransport.
 */
export class Cancellation {
  /** Why it was cancelled (a DOMException: "TimeoutError" or "AbortError"); undefined while not. */
  reason: unknown = undefined;
  #subscriber: ((reason: unknown) => void) | undefined;

  get cancelled(): boolean {
    return this.reason !== undefined;
  }

  cancel(reason: unknown): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.#subscriber?.(reason);
  }

  /** The transport's hook (one at a time); undefined to unsubscribe. */
  subscribe(subscriber: ((reason: unknown) => void) | undefined): void {
    this.#subscriber = subscriber;
    if (subscriber && this.reason !== undefined) subscriber(this.reason);
  }
}

export interface Transport {
  readonly name: "fetch" | "http1";
  send(backend: BackendView, request: UpstreamRequest): Promise<Response>;
  /** Closes idle upstream connections (shutdown). */
  close(): void;
}

export const fetchTransport: Transport = {
  name: "fetch",
  send(backend, { method, path, headers, body, cancel }) {
    const abort = new AbortController();
    cancel.subscribe((reason) => abort.abort(reason));
    return fetch(backend.url + path, { method, headers, body, redirect: "manual", decompress: false, signal: abort.signal });
  },
  close() {},
};
