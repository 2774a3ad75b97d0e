/**
 * What an upstream failure means, and whether the request may go to another
 * backend. Pure.
 */

export type UpstreamFailure =
  | "refused"
  | "connect-timeout"
  | "reset"
  | "timeout"
  | "aborted"
  | "unresolved"
  | "protocol"
  /** Refused locally before anything was sent (e.g. a header value fetch() will not send). */
  | "invalid"
  | "other";

/** Maps a rejected `fetch()` to a failure kind (codes as Bun 1.4 reports them). */
export function classifyFetchError(error: unknown): UpstreamFailure {
  const e = error as { name?: unknown; code?: unknown } | null;
  if (e?.name === "TimeoutError") return "timeout";
  if (e?.name === "AbortError") return "aborted";
  switch (e?.code) {
    case "ECONNREFUSED":
    case "ConnectionRefused":
      return "refused";
    case "ECONNRESET":
    case "ConnectionClosed":
    case "EPIPE":
      return "reset";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "unresolved";
    case "ETIMEDOUT":
      return "connect-timeout";
    case "EPROTO":
      return "protocol";
    default:
      return typeof e?.code === "string" && e.code.startsWith("ERR_") ? "invalid" : "other";
  }
}

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}

/**
 * Retry on another backend when the backend failed before answering and
 * resending cannot do harm: the method is idempotent or there was no body, and
 * the body (if any) can be sent again.
 */
export function shouldRetry(
  failure: UpstreamFailure,
  request: { method: string; hasBody: boolean; bodyReplayable: boolean },
  attempt: number,
  retries: number,
): boolean {
  if (attempt >= retries) return false;
  // Nothing reached the backend (refused, unreachable) or it dropped the connection before answering.
  if (failure !== "refused" && failure !== "connect-timeout" && failure !== "reset" && failure !== "unresolved") return false;
  if (request.hasBody && !request.bodyReplayable) return false;
  return isIdempotent(request.method) || !request.hasBody;
}

/** Base of the backoff between retries after the first (Envoy's default retry back-off base). */
const RETRY_BACKOFF_BASE_MS = 25;

/**
 * How long to wait before retry number `attempt` (1 = the first retry). The
 * first retry goes to another backend at once: it is a different server, and
 * waiting would only add latency. Later ones back off with full jitter, 25 ms ×
 * 2^(n-2) at most, so that a request meeting several failing backends in a row
 * (a pool restarting at once) does not hammer them in a tight loop of
 * microsecond failures. `random` returns [0, 1).
 */
export function retryDelayMs(attempt: number, random: () => number): number {
  if (attempt <= 1) return 0;
  return Math.floor(random() * RETRY_BACKOFF_BASE_MS * 2 ** (attempt - 2));
}

/** Failed requests feed passive ejection and `failedRequests`. */
export function countsAsFailure(status: number): boolean {
  return status >= 500;
}
