/**
 * Splits a request byte stream into messages the way the listen engine's
 * client connection does (listen/client.ts + exchange.ts), with the same pure
 * pieces: up to four leading empty lines skipped, the head up to CRLF CRLF
 * (http1/request-head.ts, partial heads checked as they grow), then the body by
 * Content-Length or the strict chunked decoder (http1/chunked.ts). For the
 * conformance tests against llhttp's corpus, without sockets.
 */
import { ChunkedDecoder, ChunkedError } from "../../src/proxy/http1/chunked.ts";
import { checkPartialHead, fieldList, isHeadError, parseRequestHead, type ParseOptions } from "../../src/proxy/http1/request-head.ts";

export interface ParsedMessage {
  readonly method: string;
  readonly url: string;
  readonly version: string;
  readonly headers: [string, string][];
  readonly body: Uint8Array;
  readonly complete: boolean;
}

export interface SplitResult {
  readonly messages: ParsedMessage[];
  /** Where each complete message ends in the input (the index after its last byte). */
  readonly ends: number[];
  /** Why the stream was refused (after `messages`), with the status Fulcrum answers. */
  readonly error?: { readonly status: number; readonly reason: string };
}

const CRLF2 = Buffer.from("\r\n\r\n");

export function splitMessages(input: Uint8Array, options: ParseOptions = {}): SplitResult {
  const bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const messages: ParsedMessage[] = [];
  const ends: number[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    for (let i = 0; i < 4 && bytes[pos] === 13 && bytes[pos + 1] === 10; i++) pos += 2;
    if (pos >= bytes.length) break;
    const end = bytes.indexOf(CRLF2, pos);
    if (end < 0) {
      const problem = checkPartialHead(bytes.toString("latin1", pos));
      return problem ? { messages, ends, error: problem } : { messages, ends };
    }
    const head = parseRequestHead(bytes.toString("latin1", pos, end), options);
    if (isHeadError(head)) return { messages, ends, error: head };
    pos = end + 4;
    const base = { method: head.method, url: head.target, version: `1.${head.minor}`, headers: fieldList(head) };
    if (head.chunked) {
      const decoder = new ChunkedDecoder(true);
      const parts: Uint8Array[] = [];
      try {
        pos = decoder.push(bytes, pos);
      } catch (error) {
        return { messages, ends, error: { status: 400, reason: (error as ChunkedError).message } };
      }
      for (const piece of decoder.pieces) parts.push(piece);
      messages.push({ ...base, body: Buffer.concat(parts), complete: decoder.done });
      if (!decoder.done) break;
      ends.push(pos);
    } else {
      const length = Math.max(0, head.contentLength);
      const body = bytes.subarray(pos, Math.min(bytes.length, pos + length));
      pos += body.length;
      messages.push({ ...base, body, complete: body.length === length });
      if (body.length < length) break;
      ends.push(pos);
    }
    // A WebSocket handshake: what follows is the tunnel's bytes, not requests.
    if (head.websocket) break;
    if (!head.keepAlive && pos < bytes.length) return { messages, ends, error: { status: 0, reason: "data after a request that closes the connection (ignored)" } };
  }
  return { messages, ends };
}
