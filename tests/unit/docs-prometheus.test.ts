/**
 * The Prometheus examples (examples/prometheus/) and the metric table in
 * docs/operations.md against what /lb-metrics really serves:
 *
 * - `promtool check config`, `promtool check rules` and `promtool test rules`
 *   (alerts.test.yml) pass, when promtool is installed (Debian's prometheus
 *   package; CI installs it), else they are skipped with a message;
 * - every metric and label the rules and their tests use exists in the text
 *   metricsText() renders (src/http/metrics.ts);
 * - the doc's table lists exactly the families rendered, with their labels.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { metricsText } from "../../src/http/metrics.ts";
import { statusBody } from "../../src/http/status.ts";
import { backend } from "../helpers/backends.ts";
import { ROOT } from "../helpers/docs.ts";

const DIR = join(ROOT, "examples/prometheus");
const promtool = Bun.which("promtool");
if (!promtool) console.log("promtool not installed (Debian's prometheus package): skipping promtool check/test of examples/prometheus");

/** Every family rendered: a cluster primary with a static backend and a managed instance, on the listen engine, sharing state through Redis. */
const text = metricsText(
  statusBody({
    backends: [backend("b1", { url: "http://10.0.0.11:3000" }), backend("i1", { url: "http://127.0.0.1:5001", managed: true, restarts: 2 })],
    strategy: "least-load",
    uptime: 1,
    draining: false,
    scaling: { min: 1, max: 4, desired: 1, load: 0, lastAction: null, actions: { up: 0, down: 0 } },
    edge: { refused: 0, rateLimited: 0, noBackend: 0, retries: 0, retriesDenied: 0, bytesIn: 0, bytesOut: 0, connections: 1, webSockets: 0, queued: 0 },
    workers: [{ index: 0, pid: 1, totalRequests: 0 }],
    nodes: [{ id: "h:4000", host: "h", port: 4000, version: "0.1.0", started: "2026-01-01T00:00:00Z", lastSeen: "2026-01-01T00:00:01Z", instances: [] }],
  }),
);

/** Family name → its type and the label names its samples carry (`le` excluded). */
const families = new Map<string, { type: string; labels: Set<string> }>();
for (const m of text.matchAll(/^# TYPE (\w+) (\w+)$/gm)) families.set(m[1] as string, { type: m[2] as string, labels: new Set() });
for (const m of text.matchAll(/^(\w+?)(_bucket|_sum|_count)?(?:\{(.*)\})? \S+$/gm)) {
  const name = families.has(`${m[1]}${m[2] ?? ""}`) ? `${m[1]}${m[2] ?? ""}` : (m[1] as string);
  for (const label of (m[3] ?? "").matchAll(/(\w+)="/g)) if (label[1] !== "le") families.get(name)?.labels.add(label[1] as string);
}

/** The series a name refers to: a family, or a histogram's _bucket/_sum/_count. */
function familyOf(name: string) {
  return families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ""));
}

/** `fulcrum_*` selectors in a PromQL expression or a promtool series: the name and the label names matched. */
function selectors(expr: string): { name: string; labels: string[] }[] {
  return [...expr.matchAll(/\b(fulcrum_\w+)(?:\{([^}]*)\})?/g)].map((m) => ({
    name: m[1] as string,
    labels: [...(m[2] ?? "").matchAll(/(\w+)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1] as string),
  }));
}

/** What Prometheus adds to every scraped series. */
const TARGET_LABELS = new Set(["job", "instance"]);

function unknownSelectors(exprs: string[]): string[] {
  const problems: string[] = [];
  for (const expr of exprs) {
    for (const { name, labels } of selectors(expr)) {
      const family = familyOf(name);
      if (!family) problems.push(`${name}: not served by /lb-metrics`);
      else for (const label of labels) if (!family.labels.has(label) && !TARGET_LABELS.has(label) && label !== "le") problems.push(`${name}{${label}}: no such label`);
    }
  }
  return problems;
}

describe("examples/prometheus", () => {
  const alerts = Bun.YAML.parse(readFileSync(join(DIR, "alerts.yml"), "utf8")) as { groups: { rules: { expr: string }[] }[] };
  const alertTests = Bun.YAML.parse(readFileSync(join(DIR, "alerts.test.yml"), "utf8")) as { tests: { input_series: { series: string }[] }[] };

  test("the rules use metrics and labels /lb-metrics serves", () => {
    const exprs = alerts.groups.flatMap((g) => g.rules.map((r) => r.expr));
    expect(exprs.length).toBeGreaterThanOrEqual(5);
    expect(unknownSelectors(exprs)).toEqual([]);
    // and the check can fail:
    expect(unknownSelectors(['fulcrum_backend_up{code="5xx"}', 'fulcrum_requests_total{status="500"}'])).toEqual([
      "fulcrum_backend_up: not served by /lb-metrics",
      "fulcrum_requests_total{status}: no such label",
    ]);
  });

  test("the rules' tests feed series shaped like the real ones", () => {
    expect(unknownSelectors(alertTests.tests.flatMap((t) => t.input_series.map((s) => s.series)))).toEqual([]);
  });

  const run = (args: string[]) => {
    const result = Bun.spawnSync([promtool as string, ...args], { cwd: DIR, stdout: "pipe", stderr: "pipe" });
    return { code: result.exitCode, output: `${result.stdout.toString()}${result.stderr.toString()}` };
  };
  test.skipIf(!promtool)("promtool check config prometheus.yml (with its rule file)", () => {
    const { code, output } = run(["check", "config", "prometheus.yml"]);
    expect(output).toContain("SUCCESS");
    expect(code).toBe(0);
  });
  test.skipIf(!promtool)("promtool check rules alerts.yml", () => {
    const { code, output } = run(["check", "rules", "alerts.yml"]);
    expect(output).toContain("SUCCESS");
    expect(code).toBe(0);
  });
  test.skipIf(!promtool)("promtool test rules alerts.test.yml: each alert fires when it should, and only then", () => {
    const { code, output } = run(["test", "rules", "alerts.test.yml"]);
    expect(output).toContain("SUCCESS");
    expect(code).toBe(0);
  });
});

describe("docs/operations.md metric table", () => {
  test("lists exactly the families /lb-metrics renders, each with its type and labels", async () => {
    const doc = await Bun.file(join(ROOT, "docs/operations.md")).text();
    const rows = [...doc.matchAll(/^\| `(fulcrum_\w+)` \| (\w+) \|([^|]*)\|/gm)].map((m) => ({
      name: m[1] as string,
      type: m[2] as string,
      labels: [...(m[3] ?? "").matchAll(/`(\w+)`/g)].map((l) => l[1] as string).sort(),
    }));
    expect(rows.map((r) => r.name).sort()).toEqual([...families.keys()].sort());
    for (const row of rows) {
      const family = families.get(row.name);
      expect({ name: row.name, type: row.type, labels: row.labels }).toEqual({ name: row.name, type: family?.type ?? "", labels: [...(family?.labels ?? [])].sort() });
    }
  });
});
