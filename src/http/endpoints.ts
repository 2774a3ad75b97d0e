/**
 * The balancer's own endpoints (`/lb-status`, `/lb-health`), served on the
 * listen port or, when `admin.port` is set, only there.
 */
import { statusBody, type StatusFacts } from "./status.ts";

export type EndpointHandler = (req: Request, path: string) => Response | undefined;

/** Cheap test for the hot path: does this path belong to the balancer? */
export function isReservedPath(path: string): boolean {
  return path.startsWith("/lb-");
}

export function createEndpoints(facts: () => StatusFacts): EndpointHandler {
  return (req, path) => {
    const route = path.split("?", 1)[0];
    if (route === "/lb-health") {
      return facts().draining
        ? new Response("draining", { status: 503, headers: { "content-type": "text/plain" } })
        : new Response("ok", { headers: { "content-type": "text/plain" } });
    }
    if (route === "/lb-status") {
      if (req.method !== "GET" && req.method !== "HEAD") return methodNotAllowed("GET, HEAD");
      return Response.json(statusBody(facts()), { headers: { "cache-control": "no-store" } });
    }
    return undefined;
  };
}

function methodNotAllowed(allow: string): Response {
  return new Response("405 Method Not Allowed\n", { status: 405, headers: { allow } });
}
