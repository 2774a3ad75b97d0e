import { describe, expect, test } from "bun:test";
import { ChunkedDecoder, headEnd, parseResponseHead, ProtocolError, requestHead } from "../../src/decide/http1.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (parts: Uint8Array[]) => new TextDecoder().decode(Buffer.concat(parts));

describe("response heads", () => {
  test("status, fields in order, repeated Set-Cookie kept apart, hop-by-hop dropped", () => {
    const head = parseResponseHead(
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nConnection: keep-alive, X-Internal\r\nX-Internal: 1\r\nKeep-Alive: timeout=5\r\nSet-Cookie: b=2\r\nContent-Length: 5",
      "GET",
    );
    expect(head.status).toBe(200);
    expect(head.statusText).toBe("OK");
    expect(head.headers).toEqual([
      ["Content-Type", "text/plain"],
      ["Set-Cookie", "a=1"],
      ["Set-Cookie", "b=2"],
      ["Content-Length", "5"],
    ]);
    expect(head.framing).toEqual({ kind: "length", length: 5 });
    expect(head.keepAlive).toBe(true);
  });

  test("body framing follows RFC 9112 §6.3", () => {
    const framing = (h: string, method = "GET") => parseResponseHead(h, method).framing;
    expect(framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked")).toEqual({ kind: "chunked" });
    expect(framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked")).toEqual({ kind: "chunked" });
    expect(framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip")).toEqual({ kind: "close" });
    expect(framing("HTTP/1.1 200 OK")).toEqual({ kind: "close" });
    expect(framing("HTTP/1.1 200 OK\r\nContent-Length: 0")).toEqual({ kind: "none" });
    expect(framing("HTTP/1.1 200 OK\r\nContent-Length: 10", "HEAD")).toEqual({ kind: "none" });
    expect(framing("HTTP/1.1 204 No Content")).toEqual({ kind: "none" });
    expect(framing("HTTP/1.1 304 Not Modified\r\nContent-Length: 10")).toEqual({ kind: "none" });
  });

  test("Transfer-Encoding beside Content-Length: chunked wins and Content-Length is not forwarded", () => {
    const head = parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked", "GET");
    expect(head.framing).toEqual({ kind: "chunked" });
    expect(head.headers).toEqual([]);
  });

  test("keep-alive: HTTP/1.1 unless Connection: close; HTTP/1.0 only if asked; never when the body ends at close", () => {
    expect(parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close", "GET").keepAlive).toBe(false);
    expect(parseResponseHead("HTTP/1.0 200 OK\r\nContent-Length: 1", "GET").keepAlive).toBe(false);
    expect(parseResponseHead("HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive", "GET").keepAlive).toBe(true);
    expect(parseResponseHead("HTTP/1.1 200 OK", "GET").keepAlive).toBe(false);
  });

  test("malformed heads are protocol errors", () => {
    for (const bad of [
      "HTTP/2 200 OK",
      "HTTP/1.1 20 OK",
      "garbage",
      "HTTP/1.1 200 OK\r\nno colon here",
      "HTTP/1.1 200 OK\r\nBad Name: x",
      "HTTP/1.1 200 OK\r\nContent-Length: -1",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2",
      "HTTP/1.1 200 OK\r\n folded: continuation",
    ]) {
      expect(() => parseResponseHead(bad, "GET")).toThrow(ProtocolError);
    }
  });

  test("finds the end of a head across the buffer", () => {
    expect(headEnd(enc("HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody"))).toBe(21); // where the blank line starts
    expect(headEnd(enc("HTTP/1.1 200 OK\r\nA: b\r\n"))).toBe(-1);
  });
});

describe("chunked decoding", () => {
  test("decodes chunks, extensions and trailers, and says where the message ended", () => {
    const d = new ChunkedDecoder();
    const input = enc("5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT");
    const { pieces, consumed } = d.push(input);
    expect(dec(pieces)).toBe("hello world");
    expect(d.done).toBe(true);
    expect(new TextDecoder().decode(input.subarray(consumed))).toBe("NEXT");
  });

  test("works byte by byte", () => {
    const d = new ChunkedDecoder();
    const all: Uint8Array[] = [];
    for (const byte of enc("3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n")) all.push(...d.push(new Uint8Array([byte])).pieces.map((p) => p.slice()));
    expect(dec(all)).toBe("abcd");
    expect(d.done).toBe(true);
  });

  test("rejects bad framing", () => {
    for (const bad of ["zz\r\n", "5\r\nhello!\r\n", "5\nhello\r\n", `${"1".repeat(13)}\r\n`, `${"0".repeat(5000)}`]) {
      expect(() => new ChunkedDecoder().push(enc(bad))).toThrow(ProtocolError);
    }
  });
});

describe("request heads", () => {
  test("request line, forwarded fields, and framing decided by the body", () => {
    const headers = new Headers({ host: "app", "x-a": "1", "content-length": "99", expect: "100-continue" });
    expect(requestHead("POST", "/p?q=1", headers, 5)).toBe("POST /p?q=1 HTTP/1.1\r\nhost: app\r\nx-a: 1\r\ncontent-length: 5\r\n\r\n");
    expect(requestHead("POST", "/", headers, "chunked")).toBe("POST / HTTP/1.1\r\nhost: app\r\nx-a: 1\r\ntransfer-encoding: chunked\r\n\r\n");
    expect(requestHead("GET", "/", headers, null)).toBe("GET / HTTP/1.1\r\nhost: app\r\nx-a: 1\r\n\r\n");
  });
});
