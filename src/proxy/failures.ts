/**
 * Every way a request can fail before a backend's answer reaches the client,
 * and the one place that turns each into a status code, headers and a body.
 * Both engines render these (`serve` as a Response, `listen` as bytes); nothing
 * else in the request path builds an error response.
 */
import type { UpstreamFailure } from "../decide/retry.ts";
import type { EdgeStats } from "../runtime/outcomes.ts";
import { describeFailure } from "../runtime/prober.ts";

export type Failure =
  /** The request head broke a rule (request-head.ts); decided before anything was forwarded. */
  | { readonly kind: "bad-request"; readonly status: 400 | 405 | 414 | 417 | 431 | 501 | 505; readonly reason: string }
  /** The body broke its framing mid-stream (bad chunk, bytes after a complete body). */
  | { readonly kind: "bad-body"; readonly reason: string }
  | { readonly kind: "too-large"; readonly limit: number }
  /** The head did not arrive within `proxy.headerTimeout`, or the body stalled for `proxy.idleTimeout`. */
  | { readonly kind: "client-timeout"; readonly what: "head" | "body" }
  | { readonly kind: "rate-limited"; readonly retryAfterSeconds: number }
  /** No backend to send it to: none healthy, or the queue for a slot is full or timed out. */
  | { readonly kind: "no-backend"; readonly retryAfterSeconds: number; readonly why?: string }
  /** Every backend tried failed before answering. */
  | { readonly kind: "all-failed"; readonly detail: string }
  | { readonly kind: "upstream"; readonly failure: UpstreamFailure; readonly backend: string; readonly responseTimeout: number }
  /** The backend's answer could not be parsed. */
  | { readonly kind: "bad-response"; readonly backend: string; readonly reason: string }
  | { readonly kind: "too-many-connections" }
  | { readonly kind: "bad-handshake"; readonly status: 400 | 426; readonly reason: string };

export interface FailureResponse {
  readonly status: number;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string;
}

const TEXT: readonly [string, string] = ["content-type", "text/plain"];

const REASONS: Record<number, string> = {
  400: "Bad Request",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  414: "URI Too Long",
  417: "Expectation Failed",
  426: "Upgrade Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? "Error";
}

function respond(status: number, detail: string, extra: readonly (readonly [string, string])[] = []): FailureResponse {
  return { status, headers: [TEXT, ...extra], body: `${status} ${reasonPhrase(status)}: ${detail}\n` };
}

export function failureResponse(failure: Failure): FailureResponse {
  switch (failure.kind) {
    case "bad-request":
      return respond(failure.status, failure.reason, failure.status === 405 ? [["allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"]] : []);
    case "bad-body":
      return respond(400, failure.reason);
    case "too-large":
      return respond(413, `the request body is over ${failure.limit} bytes`);
    case "client-timeout":
      return respond(408, failure.what === "head" ? "the request head did not arrive in time" : "the request body stalled");
    case "rate-limited":
      return respond(429, "rate limit exceeded", [["retry-after", String(failure.retryAfterSeconds)]]);
    case "no-backend":
      return respond(503, failure.why ?? "no healthy backend", [["retry-after", String(failure.retryAfterSeconds)]]);
    case "all-failed":
      return respond(502, `every backend tried failed (${failure.detail})`);
    case "upstream":
      return respond(failure.failure === "timeout" ? 504 : 502, `${failure.backend}: ${describeFailure(failure.failure, failure.responseTimeout)}`);
    case "bad-response":
      return respond(502, `${failure.backend}: ${failure.reason}`);
    case "too-many-connections":
      return respond(503, "too many connections", [["retry-after", "1"]]);
    case "bad-handshake":
      return respond(failure.status, failure.reason, failure.status === 426 ? [["sec-websocket-version", "13"]] : []);
  }
}

/**
 * Counts a failure the edge answered itself (refusals, rate limits, no
 * backend); failures at a backend are counted against it (proxy/outcome.ts).
 */
export function countFailure(stats: EdgeStats, failure: Failure): void {
  switch (failure.kind) {
    case "rate-limited":
      stats.rateLimited++;
      return;
    case "no-backend":
      stats.noBackend++;
      return;
    case "all-failed":
    case "upstream":
    case "bad-response":
      return;
    default:
      stats.refused++;
  }
}

/** Who answered, for the access line: the backend that failed, the rate limit, or Fulcrum itself. */
export function answeredBy(failure: Failure): string {
  if (failure.kind === "upstream" || failure.kind === "bad-response") return failure.backend;
  return failure.kind === "rate-limited" ? "rate limit" : "fulcrum";
}

/** Whether the response ends the client connection (every refusal of a malformed request does). */
export function closesConnection(failure: Failure): boolean {
  return failure.kind === "bad-request" || failure.kind === "bad-body" || failure.kind === "too-large" || failure.kind === "client-timeout" || failure.kind === "too-many-connections";
}

/** The serve engine's form: a Response (the listen engine writes the same as bytes, listen/client.ts). */
export function failureAsResponse(failure: Failure, stats?: EdgeStats): Response {
  if (stats) countFailure(stats, failure);
  const { status, headers, body } = failureResponse(failure);
  const all: [string, string][] = headers.map(([name, value]) => [name, value]);
  if (closesConnection(failure)) all.push(["connection", "close"]);
  return new Response(body, { status, headers: all });
}
