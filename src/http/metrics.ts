/**
 * `GET /lb-metrics`: the `/lb-status` facts in Prometheus text format
 * (version 0.0.4), names prefixed `fulcrum_`. Rendered from the status body, so
 * a cluster worker answers with the primary's cluster-wide numbers, and the
 * request path pays nothing for metrics: the counters already exist.
 */
import { LATENCY_BOUNDS_SECONDS } from "../runtime/latency.ts";
import type { statusBody } from "./status.ts";

export type StatusBody = ReturnType<typeof statusBody>;

const STATES = ["starting", "healthy", "unhealthy", "draining", "stopped", "failed"] as const;

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export function metricsText(status: StatusBody): string {
  const out: string[] = [];
  const family: Family = (name, type, help, samples) => {
    out.push(`# HELP fulcrum_${name} ${help}`, `# TYPE fulcrum_${name} ${type}`);
    // A histogram's samples carry their own suffix (_bucket, _sum, _count) before the labels.
    for (const [labels, value] of samples) out.push(`fulcrum_${name}${labels} ${formatValue(value)}`);
  };

  family("uptime_seconds", "gauge", "Seconds since the balancer started.", [["", status.uptime]]);
  family("draining", "gauge", "1 while the balancer is shutting down and refusing new connections.", [["", status.draining ? 1 : 0]]);
  family("backends", "gauge", "Backends in the pool (static and managed).", [["", status.total]]);
  if ("nodes" in status && status.nodes) family("cluster_nodes", "gauge", "Fulcrum nodes sharing this pool through Redis (cluster.redis), this one included.", [["", status.nodes.length]]);
  family("backends_healthy", "gauge", "Backends that receive traffic.", [["", status.healthy]]);

  const backends = status.instances.map((b) => ({ b, labels: labelSet({ id: b.id, url: b.url, managed: String(b.managed) }) }));
  const perBackend = (name: string, type: "gauge" | "counter", help: string, value: (b: StatusBody["instances"][number]) => number) =>
    family(name, type, help, backends.map(({ b, labels }) => [labels, value(b)]));
  perBackend("backend_healthy", "gauge", "1 when the backend receives traffic.", (b) => (b.healthy ? 1 : 0));
  family(
    "backend_state",
    "gauge",
    "1 for the backend's current state, 0 for the others.",
    backends.flatMap(({ b }) => STATES.map((state): [string, number] => [labelSet({ id: b.id, url: b.url, state }), b.state === state ? 1 : 0])),
  );
  perBackend("backend_active_requests", "gauge", "Requests sent to the backend and not yet answered.", (b) => b.activeRequests);
  perBackend("backend_requests_total", "counter", "Requests sent to the backend.", (b) => b.totalRequests);
  perBackend("backend_failed_requests_total", "counter", "Requests that failed at the backend (connection errors, timeouts, 5xx).", (b) => b.failedRequests);
  perBackend("backend_response_time_seconds", "gauge", "Moving average of the time to response headers.", (b) => b.responseTime / 1000);
  perBackend("backend_load", "gauge", "Average in-flight requests over the scaling window.", (b) => b.load);
  perBackend("backend_weight", "gauge", "Configured weight.", (b) => b.weight);
  perBackend("backend_restarts_total", "counter", "Restarts of a managed instance after it died.", (b) => b.restarts);

  const s = status.scaling;
  family("scaling_min_instances", "gauge", "instances.min.", [["", s.min]]);
  family("scaling_max_instances", "gauge", "instances.max.", [["", s.max]]);
  family("scaling_desired_instances", "gauge", "Managed instances the autoscaler wants.", [["", s.desired]]);
  family("scaling_load", "gauge", "Average load per ready instance over the stable window.", [["", s.load]]);
  requestFamilies(status, family);
  if (status.workers) {
    family("worker_requests_total", "counter", "Requests proxied by each cluster process.", status.workers.map((w) => [labelSet({ index: String(w.index), pid: String(w.pid) }), w.totalRequests]));
  }
  return `${out.join("\n")}\n`;
}

type Family = (name: string, type: "gauge" | "counter" | "histogram", help: string, samples: [labels: string, value: number][]) => void;

/** Status classes and Fulcrum's own outcomes, the `code` label of fulcrum_requests_total. */
/** Circuit states as label values (Prometheus style: no hyphen). */
const CIRCUITS = [["closed", "closed"], ["open", "open"], ["half_open", "half-open"]] as const;
const BACKEND_CODES = ["1xx", "2xx", "3xx", "4xx", "5xx", "timeout", "upstream_error"] as const;

/** The families an SRE dashboard is built on: requests by outcome, response-time histograms, retries, ejections, health, scaling, connections, bytes. */
function requestFamilies(status: StatusBody, family: Family): void {
  const t = status.traffic;
  const requests: [string, number][] = status.instances.flatMap((b) => BACKEND_CODES.map((code): [string, number] => [labelSet({ backend: b.url, code }), b.outcomes[code]]));
  if (t) {
    for (const [code, value] of [["refused", t.refused], ["rate_limited", t.rateLimited], ["no_backend", t.noBackend]] as const) requests.push([labelSet({ backend: "none", code }), value]);
  }
  family("requests_total", "counter", "Attempts sent to each backend by outcome (status class, timeout, upstream_error), and requests Fulcrum answered itself (backend \"none\").", requests);

  const histogram: [string, number][] = [];
  for (const b of status.instances) {
    let cumulative = 0;
    LATENCY_BOUNDS_SECONDS.forEach((le, i) => {
      cumulative += b.latency.counts[i] ?? 0;
      histogram.push([`_bucket${labelSet({ backend: b.url, le: String(le) })}`, cumulative]);
    });
    const count = b.latency.counts.reduce((n, c) => n + c, 0);
    histogram.push([`_bucket${labelSet({ backend: b.url, le: "+Inf" })}`, count], [`_sum${labelSet({ backend: b.url })}`, b.latency.sumMs / 1000], [`_count${labelSet({ backend: b.url })}`, count]);
  }
  family("backend_response_seconds", "histogram", "Time from the request sent to the backend's response headers.", histogram);

  if (t) {
    family("retries_total", "counter", "Attempts sent again after a backend failed before answering.", [["", t.retries]]);
    family("retries_denied_total", "counter", "Retries not made because the retry budget (proxy.retryBudget) was spent.", [["", t.retriesDenied]]);
    family("queued_requests", "gauge", "Requests waiting for a backend slot (backends at their maxConnections).", [["", t.queued]]);
  }
  family("backend_max_connections", "gauge", "The backend's maxConnections (0: no limit).", status.instances.map((b) => [labelSet({ backend: b.url }), b.maxConnections]));
  family("backend_ejections_total", "counter", "Passive ejections (circuit opened) of each backend.", status.instances.map((b) => [labelSet({ backend: b.url }), b.outcomes.ejections]));
  family(
    "backend_circuit",
    "gauge",
    "Passive health of each backend: 1 for its current circuit state (closed, open = ejected, half_open = trial requests only).",
    status.instances.flatMap((b) => CIRCUITS.map(([name, state]): [string, number] => [labelSet({ backend: b.url, state: name }), b.circuit === state ? 1 : 0])),
  );
  family(
    "backend_health_transitions_total",
    "counter",
    "Active health transitions of each backend.",
    status.instances.flatMap((b): [string, number][] => [
      [labelSet({ backend: b.url, to: "healthy" }), b.outcomes.health_up],
      [labelSet({ backend: b.url, to: "unhealthy" }), b.outcomes.health_down],
    ]),
  );
  const actions = status.scaling.actions ?? { up: 0, down: 0 };
  family("scale_actions_total", "counter", "Scale actions of the autoscaler (and admin, cold start), by direction.", [[labelSet({ direction: "up" }), actions.up], [labelSet({ direction: "down" }), actions.down]]);
  if (!t) return;
  family("websockets_open", "gauge", "WebSocket connections being proxied.", [["", t.webSockets]]);
  if (t.connections === null) return; // the serve engine sees neither connections nor bytes
  family("client_connections", "gauge", "Client connections open.", [["", t.connections]]);
  family("received_bytes_total", "counter", "Bytes read from clients (heads and bodies).", [["", t.bytesIn]]);
  family("sent_bytes_total", "counter", "Bytes written to clients (heads and bodies).", [["", t.bytesOut]]);
}

function labelSet(labels: Record<string, string>): string {
  return `{${Object.entries(labels)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(",")}}`;
}

/** Backslash, double quote and newline are the three characters the format escapes. */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "+Inf" : "-Inf";
  return String(value);
}
