/**
 * `fulcrum status` rendering, with plain values: the JSON a balancer really
 * sends (built by http/status.ts's statusBody), read leniently, laid out in
 * aligned columns, fitted to a terminal's width, coloured only when asked.
 */
import { describe, expect, test } from "bun:test";
import { formatDuration, parseStatus, renderStatus, renderTable, truncate, type StatusView } from "../../src/cli/status-table.ts";
import { statusBody } from "../../src/http/status.ts";
import type { BackendView } from "../../src/types.ts";

const NOW = Date.parse("2026-01-01T12:00:00Z");
const ESC = "\x1b[";
const strip = (text: string) => text.replace(/\x1b\[\d+m/g, "");

function backend(over: Partial<BackendView>): BackendView {
  return {
    id: "b1", url: "http://127.0.0.1:3001", host: "127.0.0.1:3001", port: 3001, weight: 1, managed: false, pid: undefined,
    state: "healthy", available: true, inflight: 0, totalRequests: 0, failedRequests: 0, responseTimeMs: 0, load: 0, restarts: 0, warmUntil: 0, maxConnections: 0, slots: 0,
    ...over,
  };
}

/** What `GET /lb-status` answers, through JSON as the command receives it. */
function status(backends: BackendView[], extra: Partial<Parameters<typeof statusBody>[0]> = {}): StatusView {
  const body = statusBody({
    backends,
    strategy: "least-load",
    uptime: 3725,
    draining: false,
    scaling: { min: 2, max: 8, desired: 3, load: 1.234, lastAction: { direction: "up", from: 2, to: 3, reason: "avg load 4.20 > 3", at: new Date(NOW - 12_000).toISOString() } },
    ...extra,
  });
  const view = parseStatus(JSON.parse(JSON.stringify(body)));
  if (!view) throw new Error("not a status");
  return view;
}

const managed = [
  backend({ id: "i1", url: "http://127.0.0.1:5001", managed: true, pid: 4242, totalRequests: 1500, failedRequests: 2, responseTimeMs: 2.94, load: 0.5, inflight: 1, restarts: 1 }),
  backend({ id: "i2", url: "http://127.0.0.1:5002", managed: true, pid: 4243, state: "starting", available: false }),
  backend({ id: "i3", url: "http://127.0.0.1:5003", managed: true, pid: 4244, state: "unhealthy", available: false, totalRequests: 20, responseTimeMs: 130.4 }),
];

describe("the header block", () => {
  test("strategy, uptime, counts and scaling with the last action", () => {
    const text = renderStatus(status(managed), { color: false, now: NOW, source: "http://127.0.0.1:4000" });
    const [first, scaling] = text.split("\n");
    expect(first).toBe("fulcrum  http://127.0.0.1:4000  strategy least-load  up 1h 02m  backends 3 (1 healthy)");
    expect(scaling).toBe("scaling  min 2  max 8  desired 3  load 1.23  last action: up 2 -> 3, 12s ago (avg load 4.20 > 3)");
  });

  test("static backends only: scaling is off; draining is said", () => {
    const view = status([backend({})], { scaling: { min: 0, max: 0, desired: 0, load: 0, lastAction: null }, draining: true });
    const lines = renderStatus(view, { color: false, now: NOW }).split("\n");
    expect(lines[0]).toEndWith("backends 1 (1 healthy)  DRAINING");
    expect(lines[1]).toBe("scaling  off (no managed instances)");
  });

  test("workers and nodes, when the status has them", () => {
    const workers = [{ index: 0, pid: 100, totalRequests: 10 }, { index: 1, pid: 101, totalRequests: 12 }];
    const json = { ...statusBody({ backends: [backend({})], strategy: "p2c", uptime: 5, draining: false, scaling: { min: 0, max: 0, desired: 0, load: 0, lastAction: null }, workers }) };
    const nodes = [
      { id: "n1", host: "10.0.0.1", port: 4000, version: "0.1.0", started: new Date(NOW - 7200_000).toISOString(), lastSeen: new Date(NOW - 1000).toISOString() },
      { id: "n2", host: "10.0.0.2", port: 4000, version: "0.1.0", started: NOW - 60_000, lastSeen: NOW - 2000 },
    ];
    const text = renderStatus(parseStatus({ ...json, nodes }) as StatusView, { color: false, now: NOW });
    expect(text).toContain("workers  #0 pid 100 10 req, #1 pid 101 12 req");
    expect(text).toContain("nodes    n1 10.0.0.1:4000  v0.1.0  up 2h 00m  seen 1s ago  (this node)");
    expect(text).toContain("         n2 10.0.0.2:4000  v0.1.0  up 1m 00s  seen 2s ago");
  });
});

describe("the table", () => {
  test("one row per backend with every column, numbers right-aligned", () => {
    const lines = renderTable(status(managed).instances, { color: false });
    expect(lines[0]).toBe("id  url                     pid  state      healthy  in flight  requests  failed  resp time  load  weight  restarts");
    expect(lines[1]).toBe("i1  http://127.0.0.1:5001  4242  healthy    yes              1      1500       2     2.9 ms  0.50       1         1");
    expect(lines[2]).toBe("i2  http://127.0.0.1:5002  4243  starting   no               0         0       0          -  0.00       1         0");
    expect(lines[3]).toBe("i3  http://127.0.0.1:5003  4244  unhealthy  no               0        20       0     130 ms  0.00       1         0");
    expect(lines).toHaveLength(4);
  });

  test("a static backend has no pid and no restarts", () => {
    const [, row] = renderTable(status([backend({})]).instances, { color: false });
    expect(row).toBe("b1  http://127.0.0.1:3001    -  healthy  yes              0         0       0          -  0.00       1         -");
  });

  test("the circuit shows in the healthy column: ejected while open, trial while half-open", () => {
    const rows = renderTable(status([backend({ id: "b1" }), backend({ id: "b2", available: false }), backend({ id: "b3" })], {
      backends: [
        { ...backend({ id: "b1" }), circuit: "closed" },
        { ...backend({ id: "b2", available: false }), circuit: "open" },
        { ...backend({ id: "b3" }), circuit: "half-open" },
      ],
    }).instances, { color: false });
    expect(rows.slice(1).map((row) => row.split(/\s{2,}/)[4])).toEqual(["yes", "no (ejected)", "trial"]);
  });

  test("an empty pool says so", () => {
    const lines = renderTable([], { color: false });
    expect(lines[0]).toStartWith("id  url");
    expect(lines[1]).toBe("(no backends)");
  });

  test("a narrow terminal cuts long URLs in the middle (scheme and port kept), then hides the least useful columns", () => {
    const long = [backend({ url: "http://backend-with-a-very-long-name.internal.example.com:3001" })];
    const natural = renderTable(status(long).instances, { color: false });
    const widest = Math.max(...natural.map((l) => l.length));
    const cut = renderTable(status(long).instances, { color: false, width: widest - 20 });
    expect(cut.every((l) => l.length <= widest - 20)).toBe(true);
    expect(cut[1]).toContain("http://backend-with-a…nal.example.com:3001");
    expect(cut.at(-1)).not.toContain("hidden");

    const narrow = renderTable(status(long).instances, { color: false, width: 80 });
    expect(narrow.every((l) => l.length <= 80)).toBe(true);
    expect(narrow[0]).not.toContain("weight");
    expect(narrow[0]).toContain("requests");
    expect(narrow.at(-1)).toBe("(terminal too narrow: weight, restarts, failed, load hidden)");
  });

  test("without a width nothing is cut (a pipe or a file)", () => {
    const url = `http://${"x".repeat(200)}:1`;
    expect(renderTable(status([backend({ url })]).instances, { color: false })[1]).toContain(url);
  });
});

describe("colours", () => {
  test("off: no escape codes at all", () => {
    expect(renderStatus(status(managed), { color: false, now: NOW })).not.toContain(ESC);
  });

  test("on: states and health are coloured, the words and the alignment stay the same", () => {
    const plain = renderStatus(status(managed), { color: false, now: NOW, width: 200 });
    const coloured = renderStatus(status(managed), { color: true, now: NOW, width: 200 });
    expect(strip(coloured)).toBe(plain);
    expect(coloured).toContain(`${ESC}32mhealthy${ESC}39m`);
    expect(coloured).toContain(`${ESC}36mstarting${ESC}39m`);
    expect(coloured).toContain(`${ESC}31munhealthy${ESC}39m`);
    expect(coloured).toContain(`${ESC}31mno${ESC}39m`);
    expect(coloured).toContain(`${ESC}1mid${ESC}22m`);
  });

  test("on and fitted: the width counts visible characters only", () => {
    const lines = renderTable(status(managed).instances, { color: true, width: 90 });
    expect(lines.every((l) => strip(l).length <= 90)).toBe(true);
  });
});

describe("lenient reading", () => {
  test("not a status: undefined", () => {
    for (const body of [null, [], "ok", { total: 1 }, { instances: "none" }]) expect(parseStatus(body)).toBeUndefined();
  });

  test("missing or odd fields show as -", () => {
    const view = parseStatus({ instances: [{ id: "x", healthy: "maybe", totalRequests: "many" }] }) as StatusView;
    expect(view.total).toBe(1);
    const [, row] = renderTable(view.instances, { color: false });
    expect(row).toBe("x   -      -  unknown  -                -         -       -          -     -       -         -");
  });
});

describe("helpers", () => {
  test("durations", () => {
    expect([0, 42, 185, 7380, 2 * 86_400 + 3600].map(formatDuration)).toEqual(["0s", "42s", "3m 05s", "2h 03m", "2d 01h"]);
  });

  test("truncate", () => {
    expect(truncate("abcdef", 6)).toBe("abcdef");
    expect(truncate("abcdefgh", 5)).toBe("abcd…");
    expect(truncate("http://host:3001", 11, "middle")).toBe("http:…:3001");
  });
});
