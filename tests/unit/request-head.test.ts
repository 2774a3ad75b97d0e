/**
 * The listen engine's request head parser and forwarder: what is refused (and
 * with which status), what a backend receives byte for byte, and the audit's
 * findings (target rewriting, `Connection: Host`, `_` spellings).
 */
import { describe, expect, test } from "bun:test";
import { forwardHead, type ForwardFacts } from "../../src/proxy/http1/forward-head.ts";
import { checkPartialHead, fieldValue, isHeadError, parseRequestHead, type RequestHead } from "../../src/proxy/http1/request-head.ts";

/** Parses "line\nline\n..." written with \n for readability (joined with CRLF). */
const parse = (...lines: string[]) => parseRequestHead(lines.join("\r\n"));
const ok = (...lines: string[]): RequestHead => {
  const head = parse(...lines);
  if (isHeadError(head)) throw new Error(`refused: ${head.status} ${head.reason}`);
  return head;
};
const refused = (...lines: string[]) => {
  const head = parse(...lines);
  return isHeadError(head) ? head.status : "accepted";
};

const facts: ForwardFacts = { peerIp: "10.0.0.9", peerTrusted: false, proto: "http", host: "example.com", requestId: () => "rid1", body: "none" };

describe("request line", () => {
  test("method, target and version are taken as sent", () => {
    const head = ok("GET /a/b?c=d#frag HTTP/1.1", "Host: example.com");
    expect([head.method, head.target, head.path, head.minor]).toEqual(["GET", "/a/b?c=d#frag", "/a/b?c=d#frag", 1]);
  });

  test.each([
    ["two spaces", "GET  / HTTP/1.1"],
    ["a tab", "GET\t/ HTTP/1.1"],
    ["no version", "GET /"],
    ["lower-case version", "GET / http/1.1"],
    ["a space in the target", "GET /a b HTTP/1.1"],
    ["raw UTF-8 in the target", "GET /\xce\xb4 HTTP/1.1"],
    ["a NUL in the target", "GET /\x00 HTTP/1.1"],
    ["a method with a separator", "G(T / HTTP/1.1"],
    ["trailing space", "GET / HTTP/1.1 "],
    ["no target", "GET HTTP/1.1"],
  ])("%s: 400", (_, line) => {
    expect(refused(line, "Host: a")).toBe(400);
  });

  test("HTTP/2.0, HTTP/1.2 and HTTP/0.9-style versions: 505", () => {
    expect(refused("GET / HTTP/2.0", "Host: a")).toBe(505);
    expect(refused("GET / HTTP/1.2", "Host: a")).toBe(505);
    expect(refused("PRI * HTTP/2.0")).toBe(505);
  });

  test("a request line over 8 KiB: 414", () => {
    expect(refused(`GET /${"a".repeat(9000)} HTTP/1.1`, "Host: a")).toBe(414);
    expect(checkPartialHead(`GET /${"a".repeat(9000)}`)?.status).toBe(414);
  });

  test("CONNECT: 405; a valid token that is no known method: 501; WebDAV and other known methods pass", () => {
    expect(refused("CONNECT example.com:443 HTTP/1.1", "Host: example.com:443")).toBe(405);
    expect(refused("FOO / HTTP/1.1", "Host: a")).toBe(501);
    expect(refused("get / HTTP/1.1", "Host: a")).toBe(501);
    for (const method of ["PROPFIND", "PURGE", "QUERY", "M-SEARCH", "PATCH"]) expect(ok(`${method} / HTTP/1.1`, "Host: a").method).toBe(method);
  });

  test("OPTIONS * is accepted; * with another method is not", () => {
    expect(ok("OPTIONS * HTTP/1.1", "Host: a").path).toBe("*");
    expect(refused("GET * HTTP/1.1", "Host: a")).toBe(400);
  });

  test("absolute-form: forwarded as its path, its authority replaces Host", () => {
    const head = ok("GET http://evil.example/x?y HTTP/1.1", "Host: good.example");
    expect([head.path, head.host]).toEqual(["/x?y", "evil.example"]);
    expect(ok("GET http://evil.example HTTP/1.1", "Host: a").path).toBe("/");
    expect(refused("GET http://user@evil.example/ HTTP/1.1", "Host: a")).toBe(400);
  });
});

describe("fields", () => {
  test.each([
    ["obs-fold", ["Host: a", "X-A: 1", " folded"]],
    ["whitespace before the colon", ["Host : a"]],
    ["an empty name", ["Host: a", ": x"]],
    ["a name with a separator", ["Host: a", "X(A): 1"]],
    ["a bare CR in a value", ["Host: a", "X-A: 1\r2"]],
    ["a bare LF in a value", ["Host: a", "X-A: 1\n2"]],
    ["a NUL in a value", ["Host: a", "X-A: 1\x002"]],
    ["a DEL in a value", ["Host: a", "X-A: 1\x7f"]],
  ])("%s: 400", (_, fields) => {
    expect(refused("GET / HTTP/1.1", ...fields)).toBe(400);
  });

  test("obs-text (bytes ≥ 0x80) in a value is accepted and flagged for latin1 writing", () => {
    expect(ok("GET / HTTP/1.1", "Host: a", "X-Name: caf\xe9").nonAscii).toBe(true);
  });

  test("Host: HTTP/1.1 needs exactly one valid Host; HTTP/1.0 may omit it", () => {
    expect(refused("GET / HTTP/1.1")).toBe(400);
    expect(refused("GET / HTTP/1.1", "Host: a", "Host: b")).toBe(400);
    expect(refused("GET / HTTP/1.1", "Host: a b")).toBe(400);
    expect(refused("GET / HTTP/1.1", "Host: a/b")).toBe(400);
    expect(ok("GET / HTTP/1.0").host).toBeNull();
    expect(ok("GET / HTTP/1.1", "Host: [::1]:8080").host).toBe("[::1]:8080");
  });

  test("more than 100 fields: 431", () => {
    const many = Array.from({ length: 101 }, (_, i) => `X-${i}: v`);
    expect(refused("GET / HTTP/1.1", "Host: a", ...many)).toBe(431);
  });
});

describe("framing", () => {
  test("Content-Length: digits only; identical repeats merged; differing refused", () => {
    expect(ok("POST / HTTP/1.1", "Host: a", "Content-Length: 003").contentLength).toBe(3);
    expect(ok("POST / HTTP/1.1", "Host: a", "Content-Length: 5", "Content-Length: 5").contentLength).toBe(5);
    expect(ok("POST / HTTP/1.1", "Host: a", "Content-Length: 5, 5").contentLength).toBe(5);
    expect(refused("POST / HTTP/1.1", "Host: a", "Content-Length: 5", "Content-Length: 6")).toBe(400);
    expect(refused("POST / HTTP/1.1", "Host: a", "Content-Length: 5", "Content-Length: 05")).toBe(400);
    expect(refused("POST / HTTP/1.1", "Host: a", "Content-Length: +5")).toBe(400);
    expect(refused("POST / HTTP/1.1", "Host: a", "Content-Length: 0x5")).toBe(400);
    expect(refused("POST / HTTP/1.1", "Host: a", "Content-Length: 1 2")).toBe(400);
    expect(refused("POST / HTTP/1.1", "Host: a", "Content-Length: 1000000000000000000000")).toBe(400);
  });

  test("Transfer-Encoding: exactly chunked; never with Content-Length; never on HTTP/1.0", () => {
    expect(ok("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked").chunked).toBe(true);
    expect(ok("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: CHUNKED").chunked).toBe(true);
    expect(refused("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Content-Length: 5")).toBe(400);
    expect(refused("POST / HTTP/1.0", "Transfer-Encoding: chunked")).toBe(400);
    expect(refused("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked, identity")).toBe(400);
    expect(refused("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked")).toBe(400);
    expect(refused("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: gzip, chunked")).toBe(501);
    expect(refused("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: xchunked")).toBe(400);
    expect(refused("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: \"chunked\"")).toBe(400);
  });

  test("Expect: 100-continue is noted for HTTP/1.1 only; other expectations get 417", () => {
    expect(ok("POST / HTTP/1.1", "Host: a", "Expect: 100-continue", "Content-Length: 1").expectContinue).toBe(true);
    expect(ok("POST / HTTP/1.0", "Expect: 100-continue", "Content-Length: 1").expectContinue).toBe(false);
    expect(refused("POST / HTTP/1.1", "Host: a", "Expect: magic")).toBe(417);
  });

  test("keep-alive: HTTP/1.1 by default unless close; HTTP/1.0 only when asked", () => {
    expect(ok("GET / HTTP/1.1", "Host: a").keepAlive).toBe(true);
    expect(ok("GET / HTTP/1.1", "Host: a", "Connection: close").keepAlive).toBe(false);
    expect(ok("GET / HTTP/1.0").keepAlive).toBe(false);
    expect(ok("GET / HTTP/1.0", "Connection: Keep-Alive").keepAlive).toBe(true);
    expect(ok("GET / HTTP/1.0", "Connection: keep-alive, close").keepAlive).toBe(false);
  });
});

describe("partial heads", () => {
  test("a bare LF or a NUL is refused before the head is complete", () => {
    expect(checkPartialHead("GET / HTTP/1.1\nHost: a\n")?.status).toBe(400);
    expect(checkPartialHead("GET / HTTP/1.1\r\nHost: a\x00")?.status).toBe(400);
    expect(checkPartialHead("GET / HTTP/1.1\r\nHost: a\r")).toBeUndefined();
    expect(checkPartialHead("GET / HTTP/1.1\r\nHost: a\r\n X")?.status).toBe(400); // a fold, seen as it starts
    expect(checkPartialHead("GET / HTTP/1.1\r\n Host: a")?.status).toBe(400); // whitespace after the request line
  });
  test("a request line still arriving is refused as soon as its version cannot be HTTP/1.0 or 1.1", () => {
    expect(checkPartialHead("GET / HTTP/1.")).toBeUndefined();
    expect(checkPartialHead("GET / HTTP/5.6")?.status).toBe(505);
    expect(checkPartialHead("GET / HTTP/2.0")?.status).toBe(505);
    expect(checkPartialHead("GET / http")?.status).toBe(400);
  });
  test("a head over 32 KiB: 431", () => {
    expect(checkPartialHead(`GET / HTTP/1.1\r\nX: ${"a".repeat(33_000)}`)?.status).toBe(431);
  });
});

describe("what the backend receives", () => {
  const forward = (f: Partial<ForwardFacts>, ...lines: string[]) => forwardHead(ok(...lines), { ...facts, ...f });

  test("the request line and other fields byte for byte; Fulcrum's lines added", () => {
    expect(forward({}, "GET /static/%2e%2e/account HTTP/1.1", "Host: example.com", "X-A: 1", "x-b:  two  ")).toBe(
      "GET /static/%2e%2e/account HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nx-b:  two  \r\n" +
        "x-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: http\r\nx-forwarded-host: example.com\r\nx-request-id: rid1\r\n\r\n",
    );
    expect(forward({}, "GET /static\\..\\account HTTP/1.1", "Host: example.com").split("\r\n")[0]).toBe("GET /static\\..\\account HTTP/1.1");
    expect(forward({}, "GET /a/../b HTTP/1.1", "Host: example.com").split("\r\n")[0]).toBe("GET /a/../b HTTP/1.1");
  });

  test("hop-by-hop fields and those Connection names are dropped; Host never is", () => {
    const sent = forward({}, "GET / HTTP/1.1", "Host: example.com", "Connection: keep-alive, Host, X-Secret", "Keep-Alive: 5", "TE: trailers", "X-Secret: 1", "Upgrade: h2c", "Proxy-Authorization: x", "X-Kept: 1");
    expect(sent).toContain("Host: example.com\r\n");
    expect(sent).toContain("X-Kept: 1\r\n");
    for (const gone of ["Connection", "Keep-Alive", "TE:", "X-Secret", "Upgrade", "Proxy-Authorization"]) expect(sent).not.toContain(gone);
  });

  test("`_` spellings of framing and forwarding fields are dropped; other underscores are kept", () => {
    const sent = forward({}, "GET / HTTP/1.1", "Host: example.com", "Transfer_Encoding: chunked", "Content_Length: 5", "X_Forwarded_For: 1.2.3.4", "X_Custom: kept");
    expect(sent).not.toMatch(/Transfer_Encoding|Content_Length|X_Forwarded_For/);
    expect(sent).toContain("X_Custom: kept\r\n");
  });

  test("framing is regenerated: one content-length, or chunked", () => {
    expect(forward({ body: "length" }, "POST / HTTP/1.1", "Host: example.com", "Content-Length: 5", "Content-Length: 5")).toMatch(/^(?![\s\S]*Content-Length)[\s\S]*content-length: 5\r\n\r\n$/);
    const chunked = forward({ body: "chunked" }, "POST / HTTP/1.1", "Host: example.com", "Transfer-Encoding: chunked");
    expect(chunked).not.toContain("Transfer-Encoding");
    expect(chunked).toContain("transfer-encoding: chunked\r\n");
  });

  test("X-Forwarded-For is appended to; spoofed -Proto/-Host are replaced unless the peer is trusted; X-Request-Id kept", () => {
    const lines = ["GET / HTTP/1.1", "Host: example.com", "X-Forwarded-For: 1.1.1.1", "X-Forwarded-Proto: https", "X-Forwarded-Host: spoof", "X-Request-Id: mine"];
    const untrusted = forward({}, ...lines);
    expect(untrusted).toContain("x-forwarded-for: 1.1.1.1, 10.0.0.9\r\n");
    expect(untrusted).toContain("x-forwarded-proto: http\r\n");
    expect(untrusted).toContain("x-forwarded-host: example.com\r\n");
    expect(untrusted).not.toContain("spoof");
    expect(untrusted).toContain("X-Request-Id: mine\r\n");
    expect(untrusted).not.toContain("rid1");
    const trusted = forward({ peerTrusted: true }, ...lines);
    expect(trusted).toContain("X-Forwarded-Proto: https\r\n");
    expect(trusted).toContain("X-Forwarded-Host: spoof\r\n");
  });

  test("preserveHost off, or an absolute-form target: the Host line is replaced", () => {
    expect(forward({ host: "127.0.0.1:5001" }, "GET / HTTP/1.1", "Host: example.com")).toMatch(/^GET \/ HTTP\/1\.1\r\n(?![\s\S]*Host: example)[\s\S]*host: 127\.0\.0\.1:5001\r\n/);
    const absolute = forward({ host: "evil.example" }, "GET http://evil.example/x HTTP/1.1", "Host: good.example");
    expect(absolute.split("\r\n")[0]).toBe("GET /x HTTP/1.1");
    expect(absolute).not.toContain("good.example\r\nx-forwarded-for"); // the Host line itself is gone
    expect(absolute).toContain("host: evil.example\r\n");
  });

  test("HTTP/1.0 requests go upstream as HTTP/1.1", () => {
    expect(forward({}, "GET / HTTP/1.0").split("\r\n")[0]).toBe("GET / HTTP/1.1");
  });

  test("a WebSocket handshake keeps its Upgrade", () => {
    const sent = forward({}, "GET /ws HTTP/1.1", "Host: example.com", "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13");
    expect(sent).toContain("connection: upgrade\r\nupgrade: websocket\r\n");
    expect(sent).toContain("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n");
  });

  test("fieldValue finds a field by name, case-insensitively", () => {
    expect(fieldValue(ok("GET / HTTP/1.1", "Host: a", "X-User:  ann "), "x-user")).toBe("ann");
    expect(fieldValue(ok("GET / HTTP/1.1", "Host: a"), "x-user")).toBeNull();
  });
});
