/**
 * A backend's response on its way to the client, as bytes: the head parsed
 * once (http1/response-head.ts), written as received when nothing in it must
 * change (no copy), else rewritten; the body passed through as framed by the
 * backend (Content-Length counted down, chunked validated as it passes, or
 * until close), de-chunked only for HTTP/1.0 clients. When the client reads
 * slower than the backend sends, the upstream socket is paused until the
 * client drains. Interim 1xx responses are dropped; a 101 to a WebSocket
 * handshake turns both connections into a byte tunnel.
 */
import { ChunkedDecoder, ChunkedError } from "../http1/chunked.ts";
import { BadResponse, clientHead, parseResponseHead, type ResponseHead } from "../http1/response-head.ts";
import type { Exchange } from "./exchange.ts";
import { Tunnel } from "./tunnel.ts";

const CRLF2 = Buffer.from("\r\n\r\n");
const MAX_RESPONSE_HEAD = 64 * 1024;

export class ResponseRelay {
  readonly #exchange: Exchange;
  #partial: Buffer | undefined;
  #head: ResponseHead | undefined;
  /** Some response byte arrived. */
  started = false;
  /** Some byte went to the client: from now on a failure can only cut the connection. */
  wroteToClient = false;
  #remaining = 0;
  #decoder: ChunkedDecoder | undefined;
  #dechunk = false;
  #clientKeepAlive = false;
  /** The backend sent bytes beyond the body it announced: its connection is not reused. */
  #dirty = false;
  #upstreamPaused = false;
  #done = false;
  /** Bytes written to the client for this response (head and body), for the access log. */
  bytesOut = 0;

  constructor(exchange: Exchange) {
    this.#exchange = exchange;
  }

  push(chunk: Buffer): void {
    this.started = true;
    if (this.#done) {
      this.#dirty = true;
      return;
    }
    if (!this.#head) return this.#onHeadBytes(chunk);
    this.#onBody(chunk, 0, null);
  }

  #onHeadBytes(chunk: Buffer): void {
    const bytes = this.#partial ? Buffer.concat([this.#partial, chunk]) : chunk;
    this.#partial = undefined;
    const end = bytes.indexOf(CRLF2);
    if (end < 0) {
      if (bytes.byteLength > MAX_RESPONSE_HEAD) return this.#exchange.responseFailed(`response head over ${MAX_RESPONSE_HEAD} bytes`);
      this.#partial = bytes;
      return;
    }
    const exchange = this.#exchange;
    const request = exchange.head;
    let head: ResponseHead;
    try {
      head = parseResponseHead(bytes.toString("latin1", 0, end), request.method);
    } catch (error) {
      return exchange.responseFailed(error instanceof BadResponse ? error.message : String(error));
    }
    const bodyStart = end + 4;
    if (head.status < 200 && head.status !== 101) {
      // An interim response (100, 103): the final one follows.
      if (bodyStart < bytes.byteLength) this.#onHeadBytes(bytes.subarray(bodyStart));
      return;
    }
    if (head.status === 101) {
      if (!request.websocket || !head.upgraded) return exchange.responseFailed("101 Switching Protocols to a request that did not ask for a WebSocket");
      this.#done = true;
      this.wroteToClient = true;
      return Tunnel.open(exchange, bytes);
    }
    this.#head = head;
    // HTTP/1.0 clients cannot read chunked: the body is decoded for them and the connection closes after it.
    this.#dechunk = request.minor === 0 && head.framing === "chunked";
    this.#clientKeepAlive = request.keepAlive && head.framing !== "close" && !this.#dechunk && exchange.requestDone;
    const connection = this.#clientKeepAlive ? (request.minor === 0 ? "keep-alive" : null) : "close";
    const text = clientHead(head, { dechunk: this.#dechunk, connection });
    if (head.framing === "length") this.#remaining = head.contentLength;
    else if (head.framing === "chunked") this.#decoder = new ChunkedDecoder(this.#dechunk);
    if (text === null) {
      // Nothing to change: the received bytes go out as they are, head and first body bytes in one write.
      this.#onBody(bytes, bodyStart, bytes.subarray(0, bodyStart));
    } else this.#onBody(bytes, bodyStart, text);
  }

  /**
   * Relays body bytes `bytes[start..]` after `prefix`, the head when this is the first chunk: a
   * string when rewritten, or the view `bytes[0..start]` when it goes as received (then head and
   * body are one slice of the chunk). Either way head and first body bytes go in one write.
   */
  #onBody(bytes: Buffer, start: number, prefix: Uint8Array | string | null): void {
    const head = this.#head as ResponseHead;
    let end = start;
    let complete = false;
    let pieces: readonly Uint8Array[] | undefined;
    try {
      switch (head.framing) {
        case "none":
          complete = true;
          break;
        case "length": {
          const take = Math.min(this.#remaining, bytes.byteLength - start);
          this.#remaining -= take;
          end = start + take;
          complete = this.#remaining === 0;
          break;
        }
        case "chunked": {
          const decoder = this.#decoder as ChunkedDecoder;
          end = decoder.push(bytes, start);
          complete = decoder.done;
          if (this.#dechunk) pieces = decoder.pieces;
          break;
        }
        case "close":
          end = bytes.byteLength;
          break;
      }
    } catch (error) {
      if (!(error instanceof ChunkedError)) throw error;
      return this.#broken(`bad chunked body from backend: ${error.message}`, prefix);
    }
    if (complete && end < bytes.byteLength) this.#dirty = true; // bytes nobody announced
    let flowing: boolean;
    const client = this.#exchange.client;
    if (typeof prefix === "string") this.bytesOut += prefix.length;
    if (pieces) for (const p of pieces) this.bytesOut += p.byteLength;
    else this.bytesOut += end - start + (prefix && typeof prefix !== "string" ? prefix.byteLength : 0);
    if (typeof prefix === "string") {
      // A rewritten head: assembled with the body bytes that came with it into one write.
      flowing = client.out.writeAssembled(prefix, pieces ?? (end > start ? [bytes.subarray(start, end)] : []));
    } else if (pieces) {
      const parts = prefix ? [prefix, ...pieces] : pieces;
      flowing = parts.length === 0 || client.out.writeAssembled("", parts);
    } else if (prefix) {
      // The head as received: head and body go out as one slice of the chunk, without a copy.
      flowing = client.write(end === bytes.byteLength ? bytes : bytes.subarray(0, end));
    } else flowing = end <= start || client.write(start === 0 && end === bytes.byteLength ? bytes : bytes.subarray(start, end));
    this.wroteToClient = true;
    if (complete) return this.#finish();
    if (!flowing && !this.#upstreamPaused) {
      this.#upstreamPaused = true;
      this.#exchange.upstream?.pause();
    }
  }

  /** The backend's framing broke: before anything reached the client it is a 502, after it the connection is cut. */
  #broken(reason: string, prefix: Uint8Array | string | null): void {
    if (prefix) return this.#exchange.responseFailed(reason);
    this.#done = true;
    this.#exchange.responseAborted();
  }

  #finish(): void {
    this.#done = true;
    const head = this.#head as ResponseHead;
    this.#exchange.responseDone(head.status, this.#clientKeepAlive, head.keepAlive && !this.#dirty);
  }

  clientDrained(): void {
    if (!this.#upstreamPaused) return;
    this.#upstreamPaused = false;
    this.#exchange.upstream?.resume();
  }

  /** The upstream closed. True when that ended a body framed "until close" (the exchange is then complete). */
  upstreamClosed(): boolean {
    if (this.#done || !this.#head || this.#head.framing !== "close") return false;
    this.#done = true;
    const head = this.#head;
    this.#exchange.responseDone(head.status, false, false);
    return true;
  }
}
