/**
 * One active health probe: GET <backend><path>, success on 2xx/3xx within the
 * timeout. The only I/O of active health checking; decisions live in decide/health.ts.
 */
import { isHealthyStatus } from "../decide/health.ts";
import { classifyFetchError, type UpstreamFailure } from "../decide/retry.ts";

export interface ProbeResult {
  readonly ok: boolean;
  /** For the log: `status: 200`, `Connection refused`, `Timeout after 2000ms`. */
  readonly detail: string;
}

const FAILURE_TEXT: Record<UpstreamFailure, string> = {
  refused: "Connection refused",
  "connect-timeout": "Connect timeout",
  reset: "Connection reset",
  timeout: "Timeout",
  aborted: "Aborted",
  unresolved: "Host not found",
  protocol: "Invalid response",
  invalid: "Request not sendable",
  other: "Request failed",
};

export function describeFailure(failure: UpstreamFailure, timeoutMs?: number): string {
  return failure === "timeout" && timeoutMs !== undefined ? `Timeout after ${timeoutMs}ms` : FAILURE_TEXT[failure];
}

export async function probe(url: string, path: string, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
  const deadline = AbortSignal.timeout(timeoutMs);
  try {
    const res = await fetch(url + path, {
      signal: signal ? AbortSignal.any([signal, deadline]) : deadline,
      redirect: "manual",
      headers: { "user-agent": "fulcrum-health-check" },
    });
    await res.arrayBuffer(); // read to the end so the connection goes back to the pool
    return { ok: isHealthyStatus(res.status), detail: `status: ${res.status}` };
  } catch (error) {
    return { ok: false, detail: describeFailure(classifyFetchError(error), timeoutMs) };
  }
}
