import { describe, expect, test } from "bun:test";
import { metricsText } from "../../src/http/metrics.ts";
import { statusBody } from "../../src/http/status.ts";
import { backend } from "../helpers/backends.ts";
import { readPrometheusText } from "../helpers/prometheus-text.ts";

// b1: 10 attempts (7 2xx, 1 4xx, 1 5xx, 1 timeout), one ejection, down once and up once; latency in three buckets.
const latencyCounts = new Array<number>(15).fill(0);
latencyCounts[2] = 5; // <= 5 ms
latencyCounts[6] = 3; // <= 100 ms
latencyCounts[14] = 1; // above 30 s
const status = statusBody({
  backends: [
    {
      ...backend("b1", { url: 'http://a:1/"x"\\', totalRequests: 10, failedRequests: 2, inflight: 3, responseTimeMs: 12.5 }),
      latency: { counts: latencyCounts, sumMs: 31_200 },
      outcomes: [0, 7, 0, 1, 1, 1, 0, 1, 1, 1],
    },
    backend("i1", { url: "http://127.0.0.1:5001", managed: true, state: "draining", available: false, restarts: 4 }),
  ],
  strategy: "least-load",
  uptime: 42,
  draining: false,
  scaling: { min: 1, max: 4, desired: 2, load: 1.5, lastAction: null, actions: { up: 3, down: 2 } },
  edge: { refused: 4, rateLimited: 5, noBackend: 6, retries: 7, retriesDenied: 1, bytesIn: 800, bytesOut: 900, connections: 12, webSockets: 2, queued: 3 },
});
const text = metricsText(status);
const parsed = readPrometheusText(text).samples;
const B1 = 'http://a:1/"x"\\';
/** The value of the sample named `name` whose labels are exactly `labels`. */
const exact = (name: string, labels: Record<string, string>) => parsed.find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
const lines = text.trimEnd().split("\n");

/** `name{labels} value` → value, for the sample whose labels include all of `match`. */
function sample(name: string, match: Record<string, string> = {}): number | undefined {
  for (const line of lines) {
    const m = line.match(/^(\w+)(\{.*\})? (\S+)$/);
    if (!m || m[1] !== name) continue;
    const labels = m[2] ?? "";
    if (Object.entries(match).every(([k, v]) => labels.includes(`${k}="${v}"`))) return Number(m[3]);
  }
  return undefined;
}

describe("/lb-metrics text", () => {
  test("is valid exposition text: HELP and TYPE first, counters _total, histograms cumulative, no repeated series", () => {
    const { problems, samples } = readPrometheusText(text);
    expect(problems).toEqual([]);
    for (const { name } of samples) expect(name.startsWith("fulcrum_")).toBe(true);
  });

  test("carries the status numbers, with times in seconds", () => {
    expect(sample("fulcrum_uptime_seconds")).toBe(42);
    expect(sample("fulcrum_backends")).toBe(2);
    expect(sample("fulcrum_backends_healthy")).toBe(1);
    expect(sample("fulcrum_backend_requests_total", { id: "b1" })).toBe(10);
    expect(sample("fulcrum_backend_failed_requests_total", { id: "b1" })).toBe(2);
    expect(sample("fulcrum_backend_active_requests", { id: "b1" })).toBe(3);
    expect(sample("fulcrum_backend_response_time_seconds", { id: "b1" })).toBe(0.0125);
    expect(sample("fulcrum_backend_restarts_total", { id: "i1" })).toBe(4);
    expect(sample("fulcrum_scaling_desired_instances")).toBe(2);
    expect(sample("fulcrum_scaling_load")).toBe(1.5);
  });

  test("state is one series per state, 1 for the current one", () => {
    expect(sample("fulcrum_backend_state", { id: "i1", state: "draining" })).toBe(1);
    expect(sample("fulcrum_backend_state", { id: "i1", state: "healthy" })).toBe(0);
    expect(sample("fulcrum_backend_healthy", { id: "i1" })).toBe(0);
  });

  test("label values escape quotes and backslashes", () => {
    expect(text).toContain('url="http://a:1/\\"x\\"\\\\"');
  });

  test("requests by backend and outcome, and Fulcrum's own answers under backend=\"none\"", () => {
    const url = 'http://a:1/\\"x\\"\\\\';
    expect(text).toContain(`fulcrum_requests_total{backend="${url}",code="2xx"} 7`);
    expect(text).toContain(`fulcrum_requests_total{backend="${url}",code="timeout"} 1`);
    expect(sample("fulcrum_requests_total", { backend: "none", code: "refused" })).toBe(4);
    expect(sample("fulcrum_requests_total", { backend: "none", code: "rate_limited" })).toBe(5);
    expect(sample("fulcrum_requests_total", { backend: "none", code: "no_backend" })).toBe(6);
  });

  test("the response-time histogram is cumulative, in seconds, from 1 ms to 30 s and +Inf", () => {
    const bucket = (le: string) => exact("fulcrum_backend_response_seconds_bucket", { backend: B1, le });
    expect([bucket("0.001"), bucket("0.005"), bucket("0.1"), bucket("30"), bucket("+Inf")]).toEqual([0, 5, 8, 8, 9]);
    expect(exact("fulcrum_backend_response_seconds_count", { backend: B1 })).toBe(9);
    expect(exact("fulcrum_backend_response_seconds_sum", { backend: B1 })).toBe(31.2);
  });

  test("retries, ejections, health transitions, scale actions, connections, WebSockets, bytes", () => {
    expect(sample("fulcrum_retries_total")).toBe(7);
    expect(exact("fulcrum_backend_ejections_total", { backend: B1 })).toBe(1);
    expect(exact("fulcrum_backend_health_transitions_total", { backend: B1, to: "unhealthy" })).toBe(1);
    expect(sample("fulcrum_scale_actions_total", { direction: "up" })).toBe(3);
    expect(sample("fulcrum_scale_actions_total", { direction: "down" })).toBe(2);
    expect(sample("fulcrum_client_connections")).toBe(12);
    expect(sample("fulcrum_websockets_open")).toBe(2);
    expect(sample("fulcrum_received_bytes_total")).toBe(800);
    expect(sample("fulcrum_sent_bytes_total")).toBe(900);
  });
});
