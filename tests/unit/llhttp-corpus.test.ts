import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { LlhttpCase } from "../helpers/llhttp-corpus.ts";
import {
  LLHTTP_FIXTURE_DIR,
  LLHTTP_REQUEST_FILES,
  caseOutcome,
  decodeHttpBlock,
  lenientCases,
  loadLlhttpRequestCases,
  parseLlhttpMarkdown,
  strictCases,
  utf8Input,
} from "../helpers/llhttp-corpus.ts";

const cases = loadLlhttpRequestCases();
const latin1 = (s: string) => Uint8Array.from(s, (ch) => ch.charCodeAt(0));
const str = (b: Uint8Array) => Buffer.from(b).toString("latin1");
const raw = (file: string) => readFileSync(join(LLHTTP_FIXTURE_DIR, file), "utf8");

function find(file: string, name: string): LlhttpCase {
  const hits = cases.filter((c) => c.file === file && c.name === name);
  expect(hits).toHaveLength(1);
  return hits[0] as LlhttpCase;
}

/** Types straight from the meta comments, without the loader's markdown parsing. */
function metaTypes(text: string): string[] {
  return [...text.matchAll(/<!--\s+meta=(.*)\s+-->/g)].map((m) => String(JSON.parse(m[1] ?? "").type));
}

function countBy(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

describe("fixture files", () => {
  // Blob hashes from `git ls-tree 01e105a30fd06e248bc8ac73c4adb34a63d4114a` in nodejs/llhttp.
  const upstream: Record<string, string> = {
    LICENSE: "23682c03875844d5becc72ab477a3f9056b6d888",
    "connection.md": "41b966246462e1537e31a20fc4a27a103c77d891",
    "content-length.md": "8317b056a549e8a9ba8b2380b343823814067e13",
    "finish.md": "156e38d64e8af444a5bc550abad6668486168c3e",
    "invalid.md": "1fbf5fa0ec25f11cb51bc5ffe76a001b0d097d70",
    "lenient-header-value-relaxed.md": "bc0cecb52beb78c5a646d67d5eabb7fb4ffeadf8",
    "lenient-headers.md": "5435b3f956fbb82c01c730128155273ad63bda29",
    "lenient-version.md": "a90ba06d3a9f6f931f087f47c4d2a9044e1faedd",
    "method.md": "cc6553f2552f7cfb5cf2ac4a774960e5c033d390",
    "pausing.md": "bcc3caa96988db37400d0f4cec2d0a8642436da4",
    "pipelining.md": "43c3bff35f20e9d609e2a5c5a8bc92431d22a785",
    "sample.md": "a82d97e621353b710339a61eced8689557caee64",
    "transfer-encoding.md": "47b2e852990eda266213783839dbd0a43c0c1c22",
    "uri.md": "1915f264e46aaf4fd240c84a3cc169ad82921f44",
  };

  test("are the 13 upstream request files plus LICENSE, byte for byte", () => {
    const gitBlobHash = (bytes: Uint8Array) =>
      new Bun.CryptoHasher("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
    for (const [file, hash] of Object.entries(upstream)) {
      expect({ file, hash: gitBlobHash(readFileSync(join(LLHTTP_FIXTURE_DIR, file))) }).toEqual({ file, hash });
    }
    expect(readdirSync(LLHTTP_FIXTURE_DIR).sort()).toEqual([...Object.keys(upstream), "README.md"].sort());
    expect([...LLHTTP_REQUEST_FILES].sort() as string[]).toEqual(Object.keys(upstream).filter((f) => f.endsWith(".md")).sort());
  });
});

describe("case counts", () => {
  test("one case per meta comment, per file (numbers from grep -c '<!-- meta')", () => {
    const perFile = countBy(cases.map((c) => c.file));
    expect(perFile).toEqual({
      "connection.md": 21,
      "content-length.md": 18,
      "finish.md": 3,
      "invalid.md": 24,
      "lenient-header-value-relaxed.md": 5,
      "lenient-headers.md": 4,
      "lenient-version.md": 1,
      "method.md": 16,
      "pausing.md": 13,
      "pipelining.md": 1,
      "sample.md": 18,
      "transfer-encoding.md": 31,
      "uri.md": 11,
    });
    expect(cases).toHaveLength(166);
    for (const file of LLHTTP_REQUEST_FILES) {
      expect({ file, n: perFile[file] }).toEqual({ file, n: raw(file).split("<!-- meta").length - 1 });
    }
  });

  test("per type and file, the types match the meta comments in file order", () => {
    for (const file of LLHTTP_REQUEST_FILES) {
      expect({ file, types: cases.filter((c) => c.file === file).map((c) => c.type) }).toEqual({
        file,
        types: metaTypes(raw(file)),
      });
    }
    const perType = countBy(cases.map((c) => c.type));
    expect(perType).toEqual(countBy(LLHTTP_REQUEST_FILES.flatMap((f) => metaTypes(raw(f)))));
    expect(perType).toEqual({
      request: 134,
      "request-finish": 3,
      "request-lenient-all": 1,
      "request-lenient-chunked-length": 2,
      "request-lenient-header-value-relaxed": 4,
      "request-lenient-headers": 11,
      "request-lenient-keep-alive": 2,
      "request-lenient-optional-crlf-after-chunk": 1,
      "request-lenient-optional-lf-after-cr": 4,
      "request-lenient-spaces-after-chunk-size": 1,
      "request-lenient-transfer-encoding": 2,
      "request-lenient-version": 1,
    });
  });

  test("strictCases and lenientCases split the corpus by type", () => {
    const strict = strictCases();
    const lenient = lenientCases();
    expect(strict.length + lenient.length).toBe(cases.length);
    expect(new Set(strict.map((c) => c.type))).toEqual(new Set(["request", "request-finish"]));
    expect(lenient.every((c) => c.type.startsWith("request-lenient-"))).toBe(true);
    const all = LLHTTP_REQUEST_FILES.flatMap((f) => metaTypes(raw(f)));
    expect(strict).toHaveLength(all.filter((t) => t === "request" || t === "request-finish").length);
    expect(strict).toHaveLength(137);
    expect(lenient).toHaveLength(29);
    // The one strict case that needs llhttp's skip-body knob (see strictCases()).
    expect(strict.filter((c) => c.meta.skipBody === true).map((c) => c.name)).toEqual([
      "Content-Length reset when no body is received",
    ]);
  });

  test("every case has a name, a heading line and at least one message", () => {
    for (const c of cases) {
      const lines = raw(c.file).split("\n");
      expect(lines[c.line - 1]).toContain(c.name);
      expect(c.messages.length).toBeGreaterThan(0);
    }
  });
});

describe("hand-checked cases", () => {
  test("content-length.md: Content-Length with zeroes", () => {
    const c = find("content-length.md", "`Content-Length` with zeroes");
    expect(c.line).toBe(4);
    expect(c.type).toBe("request");
    expect(str(c.input)).toBe("PUT /url HTTP/1.1\r\nContent-Length: 003\r\n\r\nabc");
    expect(c.error).toBeUndefined();
    expect(c.messages).toHaveLength(1);
    const m = c.messages[0];
    expect(m?.method).toBe("PUT");
    expect(m?.url).toBe("/url");
    expect(m?.version).toBe("1.1");
    expect(m?.headers).toEqual([["Content-Length", "003"]]);
    expect(m?.body).toEqual(latin1("abc"));
    expect(m?.complete).toBe(true);
    expect(m?.contentLength).toBe(3);
    expect(caseOutcome(c)).toBe("accept");
  });

  test("an error case: Content-Length overflow", () => {
    const c = find("content-length.md", "Error on `Content-Length` overflow");
    expect(c.error).toEqual({ code: 11, reason: "Content-Length overflow", offset: 56 });
    expect(str(c.input)).toBe("PUT /url HTTP/1.1\r\nContent-Length: 1000000000000000000000\r\n");
    // llhttp reported the first 21 digits before failing on the 22nd.
    expect(c.messages[0]?.headers).toEqual([["Content-Length", "100000000000000000000"]]);
    expect(c.messages[0]?.complete).toBe(false);
    expect(caseOutcome(c)).toBe("reject");
  });

  test("a chunked case: body is the decoded chunk data", () => {
    const c = find("transfer-encoding.md", "Parse chunks with lowercase size");
    expect(str(c.input)).toBe("PUT /url HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n");
    expect(c.messages).toHaveLength(1);
    expect(str(c.messages[0]?.body ?? new Uint8Array())).toBe("0123456789");
    expect(c.messages[0]?.complete).toBe(true);
  });

  test("chunked with trailers: trailer fields are kept apart from the head", () => {
    const c = find("transfer-encoding.md", "Trailing headers");
    const m = c.messages[0];
    expect(m?.headers).toEqual([["Transfer-Encoding", "chunked"]]);
    expect(m?.trailers).toEqual([
      ["Vary", "*"],
      ["Content-Type", "text/plain"],
    ]);
    expect(str(m?.body ?? new Uint8Array())).toBe("hello world");
  });

  test("pipelining: two keep-alive requests, and three with the last cut short", () => {
    const two = find("connection.md", "Restarting when keep-alive is explicitly");
    expect(two.messages.map((m) => [m.method, m.url, m.complete])).toEqual([
      ["PUT", "/url", true],
      ["PUT", "/url", true],
    ]);
    const three = find("pipelining.md", "Should parse multiple events");
    expect(three.messages.map((m) => [m.method, m.url, str(m.body), m.complete])).toEqual([
      ["POST", "/aaa", "AAA", true],
      ["PUT", "/bbb", "BBBB", true],
      ["PATCH", "/ccc", "CCCC", false], // Content-Length: 5, input ends after 4
    ]);
    expect(caseOutcome(three)).toBe("incomplete");
  });

  test("\\xNN and octal escapes become single raw bytes", () => {
    const ff = find("sample.md", "255 ASCII in header value");
    const at = ff.input.indexOf(0xff);
    expect(str(ff.input.subarray(at - 9, at + 7))).toBe("Header2: \xffValue2");
    expect(ff.input.filter((b) => b >= 0x80)).toEqual(Uint8Array.of(0xff));
    expect(ff.messages[0]?.headers[1]).toEqual(["Header2", "\xffValue2"]);

    // `\t` is replaced before octal, so "\01\test" is 0x01 then TAB + "est".
    const oct = find("invalid.md", "Invalid header token #2");
    expect(str(oct.input)).toBe("GET / HTTP/1.1\r\nFoo\x01\test: Bar\r\n\r\n");
    expect(oct.error).toEqual({ code: 10, reason: "Invalid header token", offset: 19 });

    const corrupt = find("invalid.md", "Corrupted Connection header");
    expect(str(corrupt.input)).toContain("Connection\r\x1b5\xd5eep-Alive\r\n");
  });

  test("escaped newlines and \\n give bare LF lines", () => {
    const c = find("sample.md", "Line folding in header value with LF");
    expect(str(c.input).startsWith("GET / HTTP/1.1\r\nLine1:   abc\n\tdef\n ghi\n")).toBe(true);
    expect(str(c.input).endsWith("Connection:\n close\n\n")).toBe(true);
    expect(c.error).toEqual({ code: 25, reason: "Missing expected CR after header value", offset: 28 });
  });

  test("obs-fold values concatenate their pieces (lenient)", () => {
    const c = find("sample.md", "Line folding in header value with CRLF");
    expect(c.type).toBe("request-lenient-headers");
    expect(c.messages[0]?.headers).toEqual([
      ["Line1", "abc\tdef ghi\t\tjkl  mno \t \tqrs"],
      ["Line2", "line2\t"],
      ["Line3", "line3"],
      ["Line4", ""],
      ["Connection", "close"],
    ]);
  });

  test("HTTP/0.9, upgrade and finish cases", () => {
    const v09 = find("sample.md", "No HTTP version");
    expect(v09.messages[0]).toMatchObject({ method: "GET", url: "/", protocol: "", version: "0.9", complete: true });

    const connect = find("method.md", "CONNECT request");
    expect(connect.error?.code).toBe(22);
    expect(caseOutcome(connect)).toBe("upgrade");

    expect(cases.filter((c) => c.file === "finish.md").map((c) => c.finish)).toEqual([0, 2, 2]);
    expect(cases.filter((c) => c.file !== "finish.md").every((c) => c.finish === undefined)).toBe(true);
  });

  test("a char above 0xFF (only in uri.md) keeps the UTF-8 bytes llhttp saw", () => {
    const c = find("uri.md", "Disallow UTF-8 in URI path in strict mode");
    expect([...c.input.subarray(4, 8)]).toEqual([0x2f, 0xce, 0xb4, 0xb6]); // "/", δ in UTF-8, ¶ in latin1
    expect(c.error).toEqual({ code: 7, reason: "Invalid char in url path", offset: 5 });
  });
});

describe("the log agrees with the input", () => {
  const SPAN = /^off=(\d+) len=(\d+) span\[[a-z_.]+\]=(?:"(.*)"|(cr|lf))$/;
  const nonAscii = cases.filter((c) => /[^\x00-\x7f]/.test(c.text));

  test("every span's offset and length select its text in the bytes llhttp parsed", () => {
    let spans = 0;
    for (const c of cases) {
      const bytes = utf8Input(c);
      for (const line of c.log) {
        const m = SPAN.exec(line);
        if (!m) continue;
        const off = Number(m[1]);
        const len = Number(m[2]);
        const want = m[3] ?? (m[4] === "cr" ? "\r" : "\n");
        const got = new TextDecoder().decode(bytes.subarray(off, off + len));
        expect({ where: `${c.file}:${c.line}`, line, got }).toEqual({ where: `${c.file}:${c.line}`, line, got: want });
        spans++;
      }
    }
    expect(spans).toBe(1332); // grep -cE "^off=[0-9]+ len=[0-9]+ span" tests/fixtures/llhttp/*.md, summed
  });

  test("input differs from llhttp's UTF-8 bytes only in the five non-ASCII cases, after any error offset", () => {
    expect(nonAscii.map((c) => `${c.file}: ${c.name}`)).toEqual([
      "sample.md: Extended Characters",
      "sample.md: 255 ASCII in header value",
      "uri.md: Disallow UTF-8 in URI path in strict mode",
      "invalid.md: Corrupted Connection header",
      "invalid.md: Corrupted header name",
    ]);
    for (const c of cases) {
      if (!nonAscii.includes(c)) expect(c.input).toEqual(utf8Input(c));
      if (c.error) {
        const prefix = (b: Uint8Array) => [...b.subarray(0, c.error?.offset)];
        expect(prefix(c.input)).toEqual(prefix(utf8Input(c)));
      }
    }
  });

  test("message counts match the log's message begin / message complete lines", () => {
    for (const c of cases) {
      const begins = c.log.filter((l) => l.endsWith(" message begin")).length;
      const completes = c.log.filter((l) => l.endsWith(" message complete")).length;
      expect(c.messages).toHaveLength(begins);
      expect(c.messages.filter((m) => m.complete)).toHaveLength(completes);
    }
  });
});

describe("parser rules, on small documents", () => {
  const doc = (http: string, log: string, meta = '{"type": "request"}') =>
    ["Top", "===", "", "## A case", "", `<!-- meta=${meta} -->`, "```http", http, "```", "", "```log", log, "```", ""].join(
      "\n",
    );

  test("headings, meta and both blocks make a case; fences under the top heading are not cases", () => {
    const text = [
      "# Top", // line 1
      "```http",
      "IGNORED / HTTP/1.1",
      "```",
      "",
      "## Group",
      "",
      "### A case", // line 8
      "<!-- meta={\"type\": \"request\"} -->",
      "```http",
      "GET / HTTP/1.1",
      "",
      "",
      "```",
      "```log",
      "off=0 message begin",
      "```",
    ].join("\n");
    const parsed = parseLlhttpMarkdown("x.md", text);
    expect(parsed).toHaveLength(1);
    expect(parsed[0]).toMatchObject({ name: "A case", groups: ["Top", "Group"], type: "request", line: 8 });
    expect(str(parsed[0]?.input ?? new Uint8Array())).toBe("GET / HTTP/1.1\r\n\r\n");
  });

  test("setext top heading and header field/value split across spans", () => {
    const log = [
      "off=0 message begin",
      'off=0 len=1 span[method]="G"',
      'off=1 len=2 span[method]="ET"',
      'off=16 len=1 span[header_field]="A"',
      'off=17 len=1 span[header_field]="b"',
      "off=18 header_field complete",
      'off=19 len=1 span[header_value]="1"',
      "off=22 header_value complete",
    ].join("\n");
    const [c] = parseLlhttpMarkdown("x.md", doc("GET / HTTP/1.1\nAb: 1", log));
    expect(c?.groups).toEqual(["Top"]);
    expect(c?.messages[0]).toMatchObject({ method: "GET", headers: [["Ab", "1"]], complete: false });
  });

  test("refuses ${...}, regex log lines, unknown lines and a missing type", () => {
    expect(() => decodeHttpBlock("GET /${1+1} HTTP/1.1\n")).toThrow("not supported");
    expect(() => parseLlhttpMarkdown("x.md", doc("GET /", "/off=\\d+ message begin/"))).toThrow("regex");
    expect(() => parseLlhttpMarkdown("x.md", doc("GET /", "off=0 message begin\noff=1 bogus"))).toThrow("unrecognised");
    expect(() => parseLlhttpMarkdown("x.md", doc("GET /", "off=0 message begin", "{}"))).toThrow("missing meta type");
  });

  test("decodeHttpBlock follows md-test.ts step by step", () => {
    expect(decodeHttpBlock("A\nB\\\nC\\r\\n\\t\\f\\x41\\101\n").text).toBe("A\r\nBC\r\n\t\fAA");
    expect([...decodeHttpBlock("\\xff\\377").bytes]).toEqual([0xff, 0xff]);
  });
});
