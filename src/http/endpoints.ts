/**
 * The balancer's own endpoints (`/lb-status`, `/lb-metrics`, `/lb-health`,
 * `/lb-dashboard` and its feed `/lb-events`), served on the listen port or,
 * when `admin.port` is set, only there.
 */
import { dashboardResponse } from "./dashboard.ts";
import { METRICS_CONTENT_TYPE, metricsText, type StatusBody } from "./metrics.ts";

export type EndpointHandler = (req: Request, path: string) => Response | undefined;

/** Cheap test for the hot path: does this path belong to the balancer? */
export function isReservedPath(path: string): boolean {
  return path.startsWith("/lb-");
}

/** Where the endpoints get their answers (a cluster worker answers with the primary's status). */
export interface EndpointSource {
  status(): StatusBody;
  draining(): boolean;
  /** Opens a `/lb-events` stream (see events.ts). */
  events(req: Request): Response;
}

export function createEndpoints(source: EndpointSource): EndpointHandler {
  return (req, path) => {
    const route = path.split("?", 1)[0];
    if (route === "/lb-health") {
      return source.draining()
        ? new Response("draining", { status: 503, headers: { "content-type": "text/plain" } })
        : new Response("ok", { headers: { "content-type": "text/plain" } });
    }
    if (route === "/lb-status") {
      if (req.method !== "GET" && req.method !== "HEAD") return methodNotAllowed("GET, HEAD");
      return Response.json(source.status(), { headers: { "cache-control": "no-store" } });
    }
    if (route === "/lb-metrics") {
      if (req.method !== "GET" && req.method !== "HEAD") return methodNotAllowed("GET, HEAD");
      return new Response(metricsText(source.status()), { headers: { "content-type": METRICS_CONTENT_TYPE, "cache-control": "no-store" } });
    }
    if (route === "/lb-dashboard") {
      if (req.method !== "GET" && req.method !== "HEAD") return methodNotAllowed("GET, HEAD");
      return dashboardResponse();
    }
    if (route === "/lb-events") {
      if (req.method !== "GET") return methodNotAllowed("GET");
      return source.events(req);
    }
    return undefined;
  };
}

function methodNotAllowed(allow: string): Response {
  return new Response("405 Method Not Allowed\n", { status: 405, headers: { allow } });
}
