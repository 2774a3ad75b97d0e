/**
 * llhttp's strict request corpus through a running Fulcrum on the listen
 * engine, end to end: each case's bytes are written to a raw connection and a
 * recorder backend notes what arrives. What reaches the backend must be
 * exactly the messages the parser predicts (tests/unit/llhttp-conformance
 * compares those with llhttp's): same count, methods, targets and body bytes;
 * and a refused message gets the predicted status with nothing after it
 * forwarded. A Host field is added to a case's first head when it has none
 * (llhttp does not require one; Fulcrum does).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { splitMessages } from "../helpers/http1-messages.ts";
import { caseOutcome, strictCases, type LlhttpCase } from "../helpers/llhttp-corpus.ts";
import { cleanupAfterAll, startFulcrum, tempDir, type Running } from "../helpers/procs.ts";
import { raw, statusesOf } from "../helpers/raw-http.ts";
import { startRawRecorder, type RawRecorder } from "../helpers/raw-recorder.ts";

cleanupAfterAll();

let recorder: RawRecorder;
let lb: Running;

beforeAll(async () => {
  recorder = startRawRecorder();
  const dir = tempDir({
    "lb.json": JSON.stringify({ listen: { port: 0, hostname: "127.0.0.1" }, backends: [recorder.url], proxy: { engine: "listen" }, health: { interval: 60_000 }, log: { access: false } }),
  });
  lb = await startFulcrum(["--config", `${dir}/lb.json`]);
});

afterAll(async () => {
  await lb?.stop();
  recorder?.stop();
});

/** The case's bytes with `Host: llhttp.test` added to its first head when that has none. */
function withHost(c: LlhttpCase): Buffer {
  const text = Buffer.from(c.input).toString("latin1");
  const lineEnd = text.indexOf("\r\n");
  const headEnd = text.indexOf("\r\n\r\n");
  if (lineEnd < 0 || /\r\nhost:/i.test(text.slice(0, headEnd < 0 ? text.length : headEnd + 2))) return Buffer.from(text, "latin1");
  return Buffer.from(`${text.slice(0, lineEnd)}\r\nHost: llhttp.test${text.slice(lineEnd)}`, "latin1");
}

/** The target as the recorder sees it: an absolute-form target arrives as its path. */
function pathOf(target: string): string {
  if (target.startsWith("/")) return target;
  const rest = /^https?:\/\/[^/?]+(.*)$/i.exec(target)?.[1] ?? "";
  return rest.startsWith("/") ? rest : `/${rest}`;
}

// WebSocket-looking upgrades are checked against the handshake rules before parsing ends; other
// upgrades are forwarded as plain requests. Neither is what this comparison is about.
const cases = strictCases().filter((c) => caseOutcome(c) !== "upgrade" && c.meta.skipBody !== true);

test("every strict llhttp case reaches the backend exactly as the parser predicts", async () => {
  const mismatches: string[] = [];
  for (const c of cases) {
    const input = withHost(c);
    const predicted = splitMessages(input);
    const forwarded = predicted.messages.filter((m) => m.complete);
    const answers = forwarded.length + (predicted.error && predicted.error.status > 0 ? 1 : 0);
    recorder.arrived.length = 0;
    const reply = await raw(lb.port, input, { until: (t) => statusesOf(t).length >= answers, timeoutMs: answers === 0 ? 300 : 2000 });
    await Bun.sleep(20);
    const arrived = recorder.arrived.filter((m) => m.url !== "/health").map((m) => ({ method: m.method, path: m.url, body: Buffer.from(m.body).toString("latin1") }));
    const expected = forwarded.map((m) => ({ method: m.method, path: pathOf(m.url), body: Buffer.from(m.body).toString("latin1") }));
    const problems: string[] = [];
    if (JSON.stringify(arrived) !== JSON.stringify(expected)) problems.push(`backend got ${JSON.stringify(arrived)}, expected ${JSON.stringify(expected)}`);
    if (predicted.error && predicted.error.status > 0 && reply.statuses.at(-1) !== predicted.error.status) {
      problems.push(`client got ${reply.statuses.join(",") || "nothing"}, expected a final ${predicted.error.status} (${predicted.error.reason})`);
    }
    if (problems.length > 0) mismatches.push(`${c.file}:${c.line} ${c.name}: ${problems.join("; ")}`);
  }
  expect(mismatches).toEqual([]);
  expect(cases.length).toBeGreaterThan(100);
}, 120_000);
