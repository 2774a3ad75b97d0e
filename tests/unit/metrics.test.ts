import { describe, expect, test } from "bun:test";
import { metricsText } from "../../src/http/metrics.ts";
import { statusBody } from "../../src/http/status.ts";
import { backend } from "../helpers/backends.ts";

const status = statusBody({
  backends: [
    backend("b1", { url: 'http://a:1/"x"\\', totalRequests: 10, failedRequests: 2, inflight: 3, responseTimeMs: 12.5 }),
    backend("i1", { url: "http://127.0.0.1:5001", managed: true, state: "draining", available: false, restarts: 4 }),
  ],
  strategy: "least-load",
  uptime: 42,
  draining: false,
  scaling: { min: 1, max: 4, desired: 2, load: 1.5, lastAction: null },
});
const text = metricsText(status);
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
  test("every family has HELP and TYPE before its samples, names prefixed fulcrum_", () => {
    const declared = new Set<string>();
    for (const line of lines) {
      const type = line.match(/^# TYPE (\S+) (gauge|counter)$/);
      if (type) declared.add(type[1] as string);
      if (line.startsWith("#")) continue;
      const name = line.split(/[{ ]/, 1)[0] as string;
      expect(name.startsWith("fulcrum_")).toBe(true);
      expect(declared.has(name)).toBe(true);
    }
    expect(text.endsWith("\n")).toBe(true);
    // Counters end in _total, as Prometheus expects.
    for (const name of declared) if (lines.includes(`# TYPE ${name} counter`)) expect(name.endsWith("_total")).toBe(true);
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
});
