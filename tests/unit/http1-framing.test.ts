/**
 * Body framing in the listen engine: the strict chunked decoder (both
 * directions) and response heads (what the client gets, what the upstream
 * connection does next).
 */
import { describe, expect, test } from "bun:test";
import { ChunkedDecoder, ChunkedError, MAX_EXTENSIONS } from "../../src/proxy/http1/chunked.ts";
import { BadResponse, clientHead, parseResponseHead } from "../../src/proxy/http1/response-head.ts";

const bytes = (s: string) => Buffer.from(s, "latin1");

/** Decodes `input` pushed in pieces of `step` bytes; returns the body, the bytes consumed and whether it ended. */
function decode(input: string, step = input.length) {
  const decoder = new ChunkedDecoder(true);
  const data = bytes(input);
  let body = "";
  let consumed = 0;
  for (let i = 0; i < data.length && !decoder.done; i += step) {
    const piece = data.subarray(i, Math.min(data.length, i + step));
    const used = decoder.push(piece);
    for (const p of decoder.pieces) body += Buffer.from(p).toString("latin1");
    consumed += used;
  }
  return { body, consumed, done: decoder.done };
}

const fails = (input: string) => {
  try {
    decode(input);
    return "accepted";
  } catch (error) {
    return error instanceof ChunkedError ? error.message : `other: ${String(error)}`;
  }
};

describe("chunked decoder", () => {
  test("decodes chunks in any split, ends exactly at the last CRLF", () => {
    const input = "5\r\nhello\r\n6;name=value;q=\"a b\"\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\nGET /next";
    for (const step of [1, 2, 3, 7, 1000]) {
      const r = decode(input, step);
      expect(r).toEqual({ body: "hello world", consumed: input.indexOf("GET /next"), done: true });
    }
  });

  test("valid trailers are accepted (RFC 9112 §7.1.2)", () => {
    expect(decode("0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n").done).toBe(true);
  });

  test.each([
    ["no size", "\r\nabc\r\n0\r\n\r\n"],
    ["a non-hex size", "g\r\n"],
    ["a space after the size", "5 \r\nhello\r\n0\r\n\r\n"],
    ["a bare LF after the size", "5\nhello\r\n0\r\n\r\n"],
    ["data longer than its size", "3\r\nhello\r\n0\r\n\r\n"],
    ["data not followed by CRLF", "5\r\nhelloXY0\r\n\r\n"],
    ["a size over 16 hex digits", `${"1".repeat(17)}\r\n`],
    ["an empty extension name", "5;=x\r\nhello\r\n0\r\n\r\n"],
    ["a space in an extension", "5; a=b\r\nhello\r\n0\r\n\r\n"],
    ["a bad trailer line", "0\r\nbad trailer\r\n\r\n"],
    ["a bare LF ending the body", "0\r\n\n"],
  ])("%s: refused", (_, input) => {
    expect(fails(input)).not.toBe("accepted");
  });

  test("oversized chunk extensions are refused", () => {
    expect(fails(`1;x=${"a".repeat(MAX_EXTENSIONS)}\r\nx\r\n0\r\n\r\n`)).toBe("chunk extensions too long");
  });

  test("in pass-through mode it only finds the end, without collecting data", () => {
    const decoder = new ChunkedDecoder(false);
    const input = bytes("3\r\nabc\r\n0\r\n\r\nrest");
    expect(decoder.push(input)).toBe(13);
    expect(decoder.pieces).toEqual([]);
    expect(decoder.decoded).toBe(3);
  });
});

describe("response heads", () => {
  const head = (...lines: string[]) => lines.join("\r\n");

  test("a plain HTTP/1.1 response with no hop-by-hop fields goes as received (no rewrite)", () => {
    const r = parseResponseHead(head("HTTP/1.1 200 OK", "Content-Length: 10", "Date: x"), "GET");
    expect([r.status, r.framing, r.contentLength, r.keepAlive]).toEqual([200, "length", 10, true]);
    expect(clientHead(r, { dechunk: false, connection: null })).toBeNull();
  });

  test("hop-by-hop fields and those Connection names are dropped", () => {
    const r = parseResponseHead(head("HTTP/1.1 200 OK", "Connection: x-secret, close", "X-Secret: 1", "Keep-Alive: timeout=5", "Proxy-Authenticate: Basic", "X-Kept: yes", "Content-Length: 2"), "GET");
    expect(r.keepAlive).toBe(false);
    expect(clientHead(r, { dechunk: false, connection: null })).toBe("HTTP/1.1 200 OK\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\n");
  });

  test("Content-Length is kept at any size; a HEAD response gains none", () => {
    const big = parseResponseHead(head("HTTP/1.1 200 OK", "Content-Length: 5000000000"), "GET");
    expect([big.framing, big.contentLength]).toEqual(["length", 5_000_000_000]);
    const headChunked = parseResponseHead(head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"), "HEAD");
    expect(headChunked.framing).toBe("none");
    expect(clientHead(headChunked, { dechunk: false, connection: null })).toBeNull();
  });

  test("a list of identical Content-Lengths is one length", () => {
    expect(parseResponseHead(head("HTTP/1.1 200 OK", "Content-Length:  5, 5 "), "GET").contentLength).toBe(5);
  });

  test("Transfer-Encoding wins over Content-Length, which is dropped", () => {
    const r = parseResponseHead(head("HTTP/1.1 200 OK", "Content-Length: 5", "Transfer-Encoding: chunked"), "GET");
    expect(r.framing).toBe("chunked");
    expect(clientHead(r, { dechunk: false, connection: null })).toBe("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  });

  test("for an HTTP/1.0 client a chunked body is de-chunked: Transfer-Encoding goes, Connection: close comes", () => {
    const r = parseResponseHead(head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "X-A: 1"), "GET");
    expect(clientHead(r, { dechunk: true, connection: "close" })).toBe("HTTP/1.1 200 OK\r\nX-A: 1\r\nconnection: close\r\n\r\n");
  });

  test("an HTTP/1.0 backend: framing until close unless told otherwise; the client hears HTTP/1.1", () => {
    const r = parseResponseHead(head("HTTP/1.0 200 OK", "X-A: 1"), "GET");
    expect([r.framing, r.keepAlive]).toEqual(["close", false]);
    expect(clientHead(r, { dechunk: false, connection: "close" })).toBe("HTTP/1.1 200 OK\r\nX-A: 1\r\nconnection: close\r\n\r\n");
  });

  test("a 101 to a WebSocket handshake keeps Connection and Upgrade", () => {
    const r = parseResponseHead(head("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: x"), "GET");
    expect(r.upgraded).toBe(true);
    expect(clientHead(r, { dechunk: false, connection: null })).toBeNull();
  });

  test("204, 304 and 1xx have no body", () => {
    for (const status of ["204 No Content", "304 Not Modified", "103 Early Hints"]) expect(parseResponseHead(head(`HTTP/1.1 ${status}`, "Content-Length: 5"), "GET").framing).toBe("none");
  });

  test.each([
    ["a bad status line", "HTTP/1.1 20 OK"],
    ["HTTP/2", "HTTP/2 200"],
    ["a bad Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: x"],
    ["conflicting Content-Lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2"],
    ["a folded line", "HTTP/1.1 200 OK\r\nX: 1\r\n 2"],
    ["a Content-Length of two numbers", "HTTP/1.1 200 OK\r\nContent-Length: 1 2"],
    ["a list of differing Content-Lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5, 6"],
    ["an empty Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: "],
  ])("%s is a bad response (502)", (_, text) => {
    expect(() => parseResponseHead(text, "GET")).toThrow(BadResponse);
  });
});
