/**
 * The first look at every request, before routing: what Fulcrum refuses
 * outright, as HTTP responses (the decisions are in request-checks.ts).
 */
import { normalizeContentLength, rejectRequest } from "./request-checks.ts";
import { failureAsResponse } from "../failures.ts";

/** Requests refused at the edge, before any routing: CONNECT, a bad Host, a bad Content-Length. */
export function refuse(req: Request): Response | undefined {
  const rejection = rejectRequest(req.method, req.headers.get("host"));
  if (rejection) return failureAsResponse({ kind: "bad-request", status: rejection.status, reason: rejection.message });
  const contentLength = req.headers.get("content-length");
  if (contentLength !== null && normalizeContentLength(contentLength) === undefined) {
    return failureAsResponse({ kind: "bad-request", status: 400, reason: "invalid Content-Length" });
  }
  return undefined;
}
