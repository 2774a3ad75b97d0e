/**
 * Strict incremental decoder of the chunked transfer coding (RFC 9112 §7.1),
 * for both directions: request bodies are decoded and re-framed by Fulcrum
 * (so a backend never sees the client's own framing, extensions or trailers),
 * response bodies are validated and passed through as received.
 *
 * Strict as llhttp's strict mode: a chunk size is 1–16 hex digits followed at
 * once by `;` or CRLF; extensions are `;name[=value]` with tokens or quoted
 * strings and no whitespace, at most MAX_EXTENSIONS bytes per chunk; data is
 * followed by exactly CRLF; the trailer section holds valid field lines, at
 * most MAX_TRAILERS bytes, and ends with CRLF. Anything else throws a
 * ChunkedError, and the caller aborts the message (nothing after it is trusted).
 */
import { CHAR_CLASS, FIELD, HEX, TCHAR } from "./chars.ts";

export const MAX_EXTENSIONS = 4096;
export const MAX_TRAILERS = 16 * 1024;
const MAX_SIZE_DIGITS = 16;

export class ChunkedError extends Error {
  override name = "ChunkedError";
}

const S_SIZE = 0; // reading hex digits
const S_EXT = 1; // after ';': in an extension name
const S_EXT_VALUE = 2; // after '=': token value
const S_EXT_QUOTED = 3; // inside a quoted value
const S_EXT_QUOTED_PAIR = 4; // after a backslash in a quoted value
const S_EXT_AFTER_QUOTE = 5; // after the closing quote
const S_SIZE_LF = 6; // CR seen at the end of the size line
const S_DATA = 7;
const S_DATA_CR = 8;
const S_DATA_LF = 9;
const S_TRAILER_START = 10; // at the start of a trailer line (or the final CRLF)
const S_TRAILER_NAME = 11;
const S_TRAILER_VALUE = 12;
const S_TRAILER_LF = 13; // CR seen at the end of a trailer line
const S_END_LF = 14; // CR seen on the empty line that ends the message
const S_DONE = 15;
const S_EXT_TOKEN = 16; // inside a token value

export class ChunkedDecoder {
  #state = S_SIZE;
  #size = 0;
  #digits = 0;
  #remaining = 0;
  #extBytes = 0;
  #nameLength = 0;
  #trailerBytes = 0;
  /** Payload bytes decoded so far. */
  decoded = 0;
  /**
   * Data pieces found by the last `push` (views into its input, valid as long as
   * the input is), when the decoder collects them; reused between pushes.
   */
  readonly pieces: Uint8Array[] = [];
  readonly #collect: boolean;

  /** `collect`: gather data pieces (false: only validate and find the end). */
  constructor(collect: boolean) {
    this.#collect = collect;
  }

  get done(): boolean {
    return this.#state === S_DONE;
  }

  /**
   * Consumes bytes from `input[start..]` up to the end of the message; returns
   * the index after the last byte consumed (input.length unless the message
   * ended inside it: the rest belongs to whatever follows).
   */
  push(input: Uint8Array, start = 0): number {
    const pieces = this.pieces;
    pieces.length = 0;
    let i = start;
    const n = input.length;
    while (i < n) {
      const state = this.#state;
      if (state === S_DATA) {
        const take = Math.min(this.#remaining, n - i);
        if (this.#collect) pieces.push(input.subarray(i, i + take));
        i += take;
        this.decoded += take;
        this.#remaining -= take;
        if (this.#remaining === 0) this.#state = S_DATA_CR;
        continue;
      }
      if (state === S_DONE) break;
      this.#byte(input[i++] as number);
    }
    return i;
  }

  #byte(c: number): void {
    const cls = CHAR_CLASS[c] as number;
    switch (this.#state) {
      case S_SIZE:
        if (cls & HEX) {
          if (++this.#digits > MAX_SIZE_DIGITS) throw new ChunkedError("chunk size too large");
          this.#size = this.#size * 16 + hexValue(c);
          return;
        }
        if (this.#digits === 0) throw new ChunkedError("invalid chunk size");
        if (c === 59 /* ; */) return this.#extension();
        if (c === 13) return void (this.#state = S_SIZE_LF);
        throw new ChunkedError("invalid character after chunk size");
      case S_EXT:
        this.#countExt();
        if (cls & TCHAR) return void this.#nameLength++;
        if (this.#nameLength === 0) throw new ChunkedError("empty chunk extension name");
        if (c === 61 /* = */) return void (this.#state = S_EXT_VALUE);
        if (c === 59) return this.#extension();
        if (c === 13) return void (this.#state = S_SIZE_LF);
        throw new ChunkedError("invalid chunk extension");
      case S_EXT_VALUE:
        this.#countExt();
        if (c === 34 /* " */) return void (this.#state = S_EXT_QUOTED);
        if (cls & TCHAR) return void (this.#state = S_EXT_TOKEN);
        throw new ChunkedError("invalid chunk extension value");
      case S_EXT_TOKEN:
        this.#countExt();
        if (cls & TCHAR) return;
        if (c === 59) return this.#extension();
        if (c === 13) return void (this.#state = S_SIZE_LF);
        throw new ChunkedError("invalid chunk extension value");
      case S_EXT_QUOTED:
        this.#countExt();
        if (c === 34) return void (this.#state = S_EXT_AFTER_QUOTE);
        if (c === 92 /* \ */) return void (this.#state = S_EXT_QUOTED_PAIR);
        if (cls & FIELD) return;
        throw new ChunkedError("invalid character in quoted chunk extension");
      case S_EXT_QUOTED_PAIR:
        this.#countExt();
        if (cls & FIELD) return void (this.#state = S_EXT_QUOTED);
        throw new ChunkedError("invalid quoted pair in chunk extension");
      case S_EXT_AFTER_QUOTE:
        if (c === 59) return this.#extension();
        if (c === 13) return void (this.#state = S_SIZE_LF);
        throw new ChunkedError("invalid chunk extension");
      case S_SIZE_LF:
        if (c !== 10) throw new ChunkedError("chunk size line without CRLF");
        this.#extBytes = 0;
        this.#digits = 0;
        if (this.#size === 0) return void (this.#state = S_TRAILER_START);
        this.#remaining = this.#size;
        this.#size = 0;
        this.#state = S_DATA;
        return;
      case S_DATA_CR:
        if (c !== 13) throw new ChunkedError("chunk data longer than its size");
        this.#state = S_DATA_LF;
        return;
      case S_DATA_LF:
        if (c !== 10) throw new ChunkedError("chunk data not followed by CRLF");
        this.#state = S_SIZE;
        return;
      case S_TRAILER_START:
        this.#countTrailer();
        if (c === 13) return void (this.#state = S_END_LF);
        if (cls & TCHAR) return void (this.#state = S_TRAILER_NAME);
        throw new ChunkedError("invalid trailer field");
      case S_TRAILER_NAME:
        this.#countTrailer();
        if (cls & TCHAR) return;
        if (c === 58 /* : */) return void (this.#state = S_TRAILER_VALUE);
        throw new ChunkedError("invalid trailer field name");
      case S_TRAILER_VALUE:
        this.#countTrailer();
        if (cls & FIELD) return;
        if (c === 13) return void (this.#state = S_TRAILER_LF);
        throw new ChunkedError("invalid character in trailer field");
      case S_TRAILER_LF:
        if (c !== 10) throw new ChunkedError("trailer line without CRLF");
        this.#state = S_TRAILER_START;
        return;
      case S_END_LF:
        if (c !== 10) throw new ChunkedError("chunked body not ended by CRLF");
        this.#state = S_DONE;
        return;
    }
  }

  #extension(): void {
    this.#countExt();
    this.#nameLength = 0;
    this.#state = S_EXT;
  }

  #countExt(): void {
    if (++this.#extBytes > MAX_EXTENSIONS) throw new ChunkedError("chunk extensions too long");
  }

  #countTrailer(): void {
    if (++this.#trailerBytes > MAX_TRAILERS) throw new ChunkedError("trailer section too large");
  }
}

function hexValue(c: number): number {
  return c <= 57 ? c - 48 : (c | 0x20) - 87;
}

/** The chunked framing of one piece of payload: size line, data, CRLF (written as three parts, no copy). */
export function chunkHeader(size: number): string {
  return `${size.toString(16)}\r\n`;
}

export const LAST_CHUNK = "0\r\n\r\n";
