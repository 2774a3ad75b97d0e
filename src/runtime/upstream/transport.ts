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
  /** Aborts the request: client gone, or the response timeout. */
  readonly signal: AbortSignal;
}

export interface Transport {
  readonly name: "fetch" | "http1";
  send(backend: BackendView, request: UpstreamRequest): Promise<Response>;
  /** Closes idle upstream connections (shutdown). */
  close(): void;
}

export const fetchTransport: Transport = {
  name: "fetch",
  send: (backend, { method, path, headers, body, signal }) =>
    fetch(backend.url + path, { method, headers, body, redirect: "manual", decompress: false, signal }),
  close() {},
};
