/**
 * `GET /lb-metrics`: the `/lb-status` facts in Prometheus text format
 * (version 0.0.4), names prefixed `fulcrum_`. Rendered from the status body, so
 * a cluster worker answers with the primary's cluster-wide numbers, and the
 * request path pays nothing for metrics: the counters already exist.
 */
import type { statusBody } from "./status.ts";

export type StatusBody = ReturnType<typeof statusBody>;

const STATES = ["starting", "healthy", "unhealthy", "draining", "stopped", "failed"] as const;

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export function metricsText(status: StatusBody): string {
  const out: string[] = [];
  const family = (name: string, type: "gauge" | "counter", help: string, samples: [labels: string, value: number][]) => {
    out.push(`# HELP fulcrum_${name} ${help}`, `# TYPE fulcrum_${name} ${type}`);
    for (const [labels, value] of samples) out.push(`fulcrum_${name}${labels} ${formatValue(value)}`);
  };

  family("uptime_seconds", "gauge", "Seconds since the balancer started.", [["", status.uptime]]);
  family("draining", "gauge", "1 while the balancer is shutting down and refusing new connections.", [["", status.draining ? 1 : 0]]);
  family("backends", "gauge", "Backends in the pool (static and managed).", [["", status.total]]);
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
  if (status.workers) {
    family("worker_requests_total", "counter", "Requests proxied by each cluster process.", status.workers.map((w) => [labelSet({ index: String(w.index), pid: String(w.pid) }), w.totalRequests]));
  }
  return `${out.join("\n")}\n`;
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
