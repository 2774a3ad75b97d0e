/**
 * The first look at every request, before routing: what Fulcrum refuses
 * outright, as HTTP responses (the decisions are in decide/request.ts).
 */
import { normalizeContentLength, rejectRequest } from "../decide/request.ts";

/** Requests refused at the edge, before any routing: CONNECT, a bad Host, a bad Content-Length. */
export function refuse(req: Request): Response | undefined {
  const rejection = rejectRequest(req.method, req.headers.get("host"));
  if (rejection) {
    const headers: Record<string, string> = rejection.status === 405 ? { allow: "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS" } : {};
    return new Response(`${rejection.status} ${rejection.message}\n`, { status: rejection.status, headers });
  }
  const contentLength = req.headers.get("content-length");
  if (contentLength !== null && normalizeContentLength(contentLength) === undefined) {
    return new Response("400 Bad Request: invalid Content-Length\n", { status: 400, headers: { connection: "close" } });
  }
  return undefined;
}
