/**
 * The listen engine's parser against nodejs/llhttp's request corpus
 * (tests/fixtures/llhttp, llhttp 9.4.2), strict cases: where llhttp's strict
 * mode errors, Fulcrum refuses; where it accepts, Fulcrum finds the same
 * message boundaries, methods, targets, fields and body bytes. The cases where
 * a proxy legitimately refuses more are listed below with the reason.
 *
 * Fulcrum also refuses an HTTP/1.1 request without Host (RFC 9112 §3.2), which
 * llhttp does not check and most of the corpus omits: that rule is turned off
 * here and tested in request-head.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { splitMessages, type ParsedMessage } from "../helpers/http1-messages.ts";
import { caseOutcome, lenientCases, strictCases, type LlhttpCase, type LlhttpMessage } from "../helpers/llhttp-corpus.ts";

/** Cases llhttp accepts and Fulcrum refuses, by file:line, with the status and why. */
const REFUSES_MORE: Record<string, { status: number; why: string }> = {
  "sample.md:314": { status: 400, why: "HTTP/0.9 (no version): Fulcrum speaks HTTP/1.0 and 1.1 only" },
  "method.md:27": { status: 405, why: "CONNECT: a reverse proxy opens no tunnels" },
  "method.md:62": { status: 405, why: "CONNECT: a reverse proxy opens no tunnels" },
  "method.md:96": { status: 405, why: "CONNECT: a reverse proxy opens no tunnels" },
  "uri.md:188": { status: 405, why: "CONNECT: a reverse proxy opens no tunnels" },
  "method.md:135": { status: 400, why: "`M-SEARCH *`: the asterisk form is for OPTIONS only (RFC 9112 §3.2.4)" },
  "method.md:372": { status: 400, why: "ICE/1.0 is not HTTP" },
  "method.md:400": { status: 400, why: "RTSP/1.0 is not HTTP" },
  "method.md:430": { status: 400, why: "RTSP/1.0 is not HTTP" },
  "method.md:458": { status: 501, why: "PRI, the HTTP/2 preface's method, on an HTTP/1.1 port" },
  "uri.md:222": { status: 400, why: "userinfo in an absolute-form target (RFC 9110 §4.2.4 forbids it in http URIs)" },
  "transfer-encoding.md:751": { status: 501, why: "`gzip, chunked`: Fulcrum re-frames bodies and implements no other transfer coding (RFC 9112 §6.1)" },
  "transfer-encoding.md:793": { status: 501, why: "`gzip, chunked` over two fields: as above" },
};

/** Cases whose llhttp log cannot be compared as is. */
const NOT_COMPARABLE: Record<string, string> = {
  "content-length.md:444": "llhttp's harness skipped the body (skipBody): the next request is that body",
};

const where = (c: LlhttpCase) => `${c.file}:${c.line}`;
const trimmed = (headers: [string, string][]) => headers.map(([name, value]) => [name, value.replace(/^[ \t]+|[ \t]+$/g, "")]);
const view = (m: LlhttpMessage | ParsedMessage) => ({ method: m.method, url: m.url, headers: trimmed(m.headers), body: Buffer.from(m.body).toString("latin1") });

const cases = strictCases().filter((c) => !(where(c) in NOT_COMPARABLE));

describe("llhttp strict request corpus", () => {
  test("the corpus is there", () => {
    expect(cases.length).toBeGreaterThan(130);
  });

  test.each(cases.filter((c) => caseOutcome(c) === "reject").map((c) => [`${where(c)} ${c.name}`, c] as const))("llhttp refuses, so does Fulcrum: %s", (_, c) => {
    const ours = splitMessages(c.input, { requireHost: false });
    expect(ours.error).toBeDefined();
    // Never more complete messages than llhttp let through before its error.
    expect(ours.messages.filter((m) => m.complete).length).toBeLessThanOrEqual(c.messages.filter((m) => m.complete).length);
  });

  test.each(cases.filter((c) => caseOutcome(c) !== "reject" && !(where(c) in REFUSES_MORE)).map((c) => [`${where(c)} ${c.name}`, c] as const))(
    "llhttp accepts, Fulcrum forwards the same messages: %s",
    (_, c) => {
      const ours = splitMessages(c.input, { requireHost: false });
      const theirs = c.messages.filter((m) => m.complete);
      // After an Upgrade llhttp stops (the rest is another protocol): compare what it parsed. Fulcrum
      // forwards only WebSocket upgrades; after any other, the next bytes are a request again.
      const upgrade = caseOutcome(c) === "upgrade";
      if (!upgrade) expect(ours.error).toBeUndefined();
      const compared = upgrade ? ours.messages.slice(0, theirs.length) : ours.messages.filter((m) => m.complete);
      expect(compared.map(view)).toEqual(theirs.map(view));
    },
  );

  test.each(Object.entries(REFUSES_MORE))("refused on purpose: %s", (location, { status }) => {
    const c = cases.find((x) => where(x) === location);
    expect(c).toBeDefined();
    expect(splitMessages((c as LlhttpCase).input, { requireHost: false }).error?.status).toBe(status);
  });

  test.each(lenientCases().map((c) => [`${where(c)} ${c.type} ${c.name}`, c] as const))("what llhttp accepts only when lenient is refused (or not forwarded): %s", (_, c) => {
    // Status 0: bytes after a request that closes the connection, which are never read.
    expect(splitMessages(c.input, { requireHost: false }).error).toBeDefined();
  });
});
