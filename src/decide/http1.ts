/**
 * HTTP/1.1 message framing for the pooled upstream transport (RFC 9112). Pure:
 * bytes in, decisions out; the socket handling is in runtime/upstream/.
 *
 * - `parseResponseHead`: status line and fields, hop-by-hop fields dropped,
 *   and how the body is framed (§6.3): none, Content-Length, chunked, or
 *   until close.
 * - `ChunkedDecoder`: incremental chunked transfer-coding decoder (§7.1) with
 *   bounds on size lines and trailers.
 * - `requestHead`: the request line and fields Fulcrum sends upstream.
 */
import { HOP_BY_HOP } from "./headers.ts";

export const MAX_HEAD_BYTES = 64 * 1024;

export type BodyFraming =
  | { readonly kind: "none" }
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "chunked" }
  | { readonly kind: "close" };

export interface ResponseHead {
  readonly status: number;
  readonly statusText: string;
  /** Fields to forward, in order, hop-by-hop ones removed; repeated names stay separate (Set-Cookie). */
  readonly headers: [string, string][];
  readonly framing: BodyFraming;
  /** The connection may carry another request after this response. */
  readonly keepAlive: boolean;
}

export class ProtocolError extends Error {
  override name = "ProtocolError";
}

const HOP = new Set(HOP_BY_HOP);

/**
 * Parses a response head (everything before the blank line, as latin1 text).
 * `method` decides whether a body can follow (HEAD never has one). Written as
 * one pass without regular expressions: it runs for every proxied response.
 * Field names are checked by the Response constructor later (a bad one is a 502).
 */
export function parseResponseHead(head: string, method: string): ResponseHead {
  const firstEnd = head.indexOf("\r\n");
  const statusLine = firstEnd < 0 ? head : head.slice(0, firstEnd);
  const minor = statusLine.charCodeAt(7);
  const status = Number(statusLine.slice(9, 12));
  if (
    !statusLine.startsWith("HTTP/1.") ||
    (minor !== 48 && minor !== 49) || // "0" or "1"
    statusLine.charCodeAt(8) !== 32 ||
    !/^\d{3}$/.test(statusLine.slice(9, 12)) ||
    (statusLine.length > 12 && statusLine.charCodeAt(12) !== 32)
  ) {
    throw new ProtocolError(`bad status line ${JSON.stringify(statusLine.slice(0, 80))}`);
  }
  const headers: [string, string][] = [];
  let connectionTokens: string[] | undefined;
  let contentLength: number | undefined;
  let chunked = false;
  let transferEncoding = false;
  let lineStart = firstEnd < 0 ? head.length : firstEnd + 2;
  while (lineStart < head.length) {
    let lineEnd = head.indexOf("\r\n", lineStart);
    if (lineEnd < 0) lineEnd = head.length;
    const colon = head.indexOf(":", lineStart);
    if (colon <= lineStart || colon > lineEnd) throw new ProtocolError(`bad header line ${JSON.stringify(head.slice(lineStart, Math.min(lineEnd, lineStart + 80)))}`);
    const name = head.slice(lineStart, colon);
    if (name.includes(" ") || name.includes("\t") || name.charCodeAt(0) < 32) throw new ProtocolError(`bad header name ${JSON.stringify(name.slice(0, 80))}`);
    const value = head.slice(colon + 1, lineEnd).trim();
    lineStart = lineEnd + 2;
    const lower = name.toLowerCase();
    if (lower === "content-length") {
      const n = Number(value);
      if (!/^\d{1,15}$/.test(value) || (contentLength !== undefined && contentLength !== n)) throw new ProtocolError(`bad Content-Length ${JSON.stringify(value)}`);
      contentLength = n;
    } else if (lower === "transfer-encoding") {
      transferEncoding = true;
      chunked = value.toLowerCase().split(",").at(-1)?.trim() === "chunked";
      continue;
    } else if (lower === "connection") {
      connectionTokens = (connectionTokens ?? []).concat(value.toLowerCase().split(",").map((t) => t.trim()));
      continue;
    }
    if (!HOP.has(lower)) headers.push([name, value]);
  }
  // Fields the Connection header names are hop-by-hop too (rare: only then a second pass).
  const forwardedFields = connectionTokens ? headers.filter(([name]) => !connectionTokens.includes(name.toLowerCase())) : headers;

  const keepAlive = minor === 49 ? !connectionTokens?.includes("close") : (connectionTokens?.includes("keep-alive") ?? false);
  let framing: BodyFraming;
  if (method === "HEAD" || (status >= 100 && status < 200) || status === 204 || status === 304) framing = { kind: "none" };
  else if (transferEncoding) framing = chunked ? { kind: "chunked" } : { kind: "close" };
  else if (contentLength !== undefined) framing = contentLength === 0 ? NO_BODY : { kind: "length", length: contentLength };
  else framing = { kind: "close" };
  // A Content-Length beside Transfer-Encoding is a smuggling vector: the latter wins (§6.3) and the former goes.
  const forwarded = transferEncoding ? forwardedFields.filter(([name]) => name.toLowerCase() !== "content-length") : forwardedFields;
  return {
    status,
    statusText: statusLine.length > 13 ? statusLine.slice(13) : "",
    headers: forwarded,
    framing,
    keepAlive: keepAlive && framing.kind !== "close",
  };
}

const NO_BODY: BodyFraming = { kind: "none" };

const CR = 13;
const LF = 10;
const MAX_SIZE_LINE = 4096;
const MAX_TRAILERS = 64 * 1024;

type ChunkState = "size" | "data" | "data-end" | "trailers" | "done";

/**
 * Incremental decoder for the chunked transfer coding. `push` takes whatever
 * bytes arrived and returns the payload pieces they contained (views into the
 * input: copy before keeping them) and how many input bytes it consumed; once
 * `done`, the rest of the input belongs to the next message.
 */
export class ChunkedDecoder {
  #state: ChunkState = "size";
  #line = "";
  #remaining = 0;
  #trailerBytes = 0;

  get done(): boolean {
    return this.#state === "done";
  }

  push(input: Uint8Array): { pieces: Uint8Array[]; consumed: number } {
    const pieces: Uint8Array[] = [];
    let i = 0;
    while (i < input.length && this.#state !== "done") {
      if (this.#state === "data") {
        const take = Math.min(this.#remaining, input.length - i);
        pieces.push(input.subarray(i, i + take));
        i += take;
        this.#remaining -= take;
        if (this.#remaining === 0) this.#state = "data-end";
        continue;
      }
      // size, data-end and trailers are line-based.
      const byte = input[i++] as number;
      if (byte !== LF) {
        this.#line += String.fromCharCode(byte);
        if (this.#line.length > MAX_SIZE_LINE) throw new ProtocolError("chunk size line too long");
        continue;
      }
      if (!this.#line.endsWith("\r")) throw new ProtocolError("bare LF in chunked body");
      const line = this.#line.slice(0, -1);
      this.#line = "";
      this.#onLine(line);
    }
    return { pieces, consumed: i };
  }

  #onLine(line: string): void {
    switch (this.#state) {
      case "size": {
        const size = line.split(";", 1)[0]?.trim() ?? "";
        if (!/^[0-9a-fA-F]{1,12}$/.test(size)) throw new ProtocolError(`bad chunk size ${JSON.stringify(size.slice(0, 20))}`);
        this.#remaining = parseInt(size, 16);
        this.#state = this.#remaining === 0 ? "trailers" : "data";
        return;
      }
      case "data-end":
        if (line !== "") throw new ProtocolError("chunk data longer than its size");
        this.#state = "size";
        return;
      case "trailers":
        this.#trailerBytes += line.length + 2;
        if (this.#trailerBytes > MAX_TRAILERS) throw new ProtocolError("trailers too large");
        if (line === "") this.#state = "done";
        return;
    }
  }
}

const BLANK_LINE = Buffer.from("\r\n\r\n");

/** Index of the blank line ending a message head (`\r\n\r\n`), or -1. */
export function headEnd(bytes: Uint8Array, from = 0): number {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return buffer.indexOf(BLANK_LINE, Math.max(0, from));
}

/**
 * The request head Fulcrum sends upstream. `headers` are already forwarded
 * (hop-by-hop removed, X-Forwarded-* set); framing fields are decided here:
 * `length` for a body of known size, `"chunked"` for a stream of unknown size,
 * `null` for no body (any Content-Length the client sent with a dropped body goes).
 */
export function requestHead(method: string, path: string, headers: Headers, body: number | "chunked" | null): string {
  let head = `${method} ${path} HTTP/1.1\r\n`;
  headers.forEach((value, name) => {
    if (name === "content-length" || name === "expect") return;
    head += `${name}: ${value}\r\n`;
  });
  if (typeof body === "number") head += `content-length: ${body}\r\n`;
  else if (body === "chunked") head += "transfer-encoding: chunked\r\n";
  return `${head}\r\n`;
}
