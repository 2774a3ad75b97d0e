/**
 * A backend's response head, parsed once into what Fulcrum needs (status,
 * body framing, whether the upstream connection stays open), and the head the
 * client receives: the one received, minus hop-by-hop fields (Connection and
 * what it names, Keep-Alive, Proxy-Connection, TE, Upgrade except on a 101,
 * Proxy-Authenticate), with Fulcrum's own Connection field when the client
 * needs one. Content-Length is kept at any size and never invented: a HEAD
 * response keeps exactly the framing fields the backend sent. Pure.
 *
 * Framing (RFC 9112 §6.3): none for HEAD, 1xx, 204 and 304; chunked when
 * Transfer-Encoding ends in chunked (a Content-Length beside it is dropped:
 * a smuggling vector); Content-Length; otherwise until the backend closes.
 */
import { CHAR_CLASS, equalsLower, FIELD, TCHAR } from "./chars.ts";

export type Framing = "none" | "length" | "chunked" | "close";

export interface ResponseHead {
  /** The head as received (latin1), without the blank line. */
  readonly text: string;
  readonly status: number;
  readonly framing: Framing;
  /** With framing "length". */
  readonly contentLength: number;
  /** The backend keeps the connection open after this response. */
  readonly keepAlive: boolean;
  /** [start, end) pairs of field lines the client must not get (end: the index of the line's CR). */
  readonly drop: readonly number[];
  /** [start, end) pairs of Transfer-Encoding lines (dropped when the body is de-chunked for an HTTP/1.0 client). */
  readonly transferEncoding: readonly number[];
  /** A 101 to a WebSocket handshake: the connection becomes a tunnel. */
  readonly upgraded: boolean;
}

export class BadResponse extends Error {
  override name = "BadResponse";
}

const NONE: readonly number[] = Object.freeze([]);

/** A Content-Length value: 1–15 digits, or a list of identical ones ("5, 5"); -2 when invalid. */
function lengthValue(text: string, start: number, end: number): number {
  let n = -1;
  let digits = 0;
  let value = -2;
  for (let i = start; i <= end; i++) {
    const c = i < end ? text.charCodeAt(i) : 44; // a final "," closes the last element
    if (c >= 48 && c <= 57) {
      if (++digits > 15) return -2;
      n = (n < 0 ? 0 : n) * 10 + (c - 48);
    } else if (c === 44) {
      if (digits === 0 || (value >= 0 && value !== n)) return -2;
      value = n;
      n = -1;
      digits = 0;
    } else if (c !== 32 && c !== 9) return -2;
    else if (digits > 0 && i + 1 < end && text.charCodeAt(i + 1) >= 48 && text.charCodeAt(i + 1) <= 57) return -2; // "1 2"
  }
  return value;
}

export function parseResponseHead(text: string, method: string): ResponseHead {
  const lineEnd = text.indexOf("\r\n");
  const statusEnd = lineEnd < 0 ? text.length : lineEnd;
  const minor = text.charCodeAt(7) - 48;
  if (!text.startsWith("HTTP/1.") || (minor !== 0 && minor !== 1) || text.charCodeAt(8) !== 32 || (statusEnd > 12 && text.charCodeAt(12) !== 32)) {
    throw new BadResponse(`bad status line ${JSON.stringify(text.slice(0, Math.min(statusEnd, 80)))}`);
  }
  const d0 = text.charCodeAt(9) - 48;
  const d1 = text.charCodeAt(10) - 48;
  const d2 = text.charCodeAt(11) - 48;
  if (!(d0 >= 0 && d0 <= 9 && d1 >= 0 && d1 <= 9 && d2 >= 0 && d2 <= 9)) throw new BadResponse(`bad status code ${JSON.stringify(text.slice(9, 12))}`);
  const status = d0 * 100 + d1 * 10 + d2;

  // Arrays only when something is found: most responses need none of them.
  let drop: number[] | undefined;
  let transferEncoding: number[] | undefined;
  let contentLengthLines: number[] | undefined;
  let contentLength = -1;
  let chunked = false;
  let hasTransferEncoding = false;
  let connection: string | undefined;
  let upgradeWebsocket = false;
  let pos = lineEnd < 0 ? text.length : lineEnd + 2;
  while (pos < text.length) {
    const start = pos;
    let c = 0;
    while (pos < text.length && ((CHAR_CLASS[(c = text.charCodeAt(pos))] as number) & TCHAR) !== 0) pos++;
    if (pos === start || c !== 58) throw new BadResponse(`bad header line ${JSON.stringify(text.slice(start, start + 80))}`);
    const nameEnd = pos++;
    const valueStart = pos;
    while (pos < text.length && ((CHAR_CLASS[(c = text.charCodeAt(pos))] as number) & FIELD) !== 0) pos++;
    const end = pos;
    if (pos < text.length) {
      if (c !== 13 || text.charCodeAt(pos + 1) !== 10) throw new BadResponse("bad character in a header value");
      pos += 2;
    }
    switch (nameEnd - start) {
      case 2: // TE
        if (equalsLower(text, start, nameEnd, "te")) (drop ??= []).push(start, end);
        break;
      case 7:
        if (equalsLower(text, start, nameEnd, "upgrade")) {
          if (status === 101) upgradeWebsocket = text.slice(valueStart, end).trim().toLowerCase().startsWith("websocket");
          else (drop ??= []).push(start, end);
        }
        break;
      case 10:
        if (equalsLower(text, start, nameEnd, "connection")) {
          const value = text.slice(valueStart, end).toLowerCase();
          connection = connection === undefined ? value : `${connection},${value}`;
          if (status !== 101) (drop ??= []).push(start, end);
        } else if (equalsLower(text, start, nameEnd, "keep-alive")) (drop ??= []).push(start, end);
        break;
      case 14:
        if (equalsLower(text, start, nameEnd, "content-length")) {
          const n = lengthValue(text, valueStart, end);
          if (n < 0 || (contentLength !== -1 && contentLength !== n)) throw new BadResponse(`bad Content-Length ${JSON.stringify(text.slice(valueStart, Math.min(end, valueStart + 40)))}`);
          contentLength = n;
          (contentLengthLines ??= []).push(start, end);
        }
        break;
      case 16:
        if (equalsLower(text, start, nameEnd, "proxy-connection")) (drop ??= []).push(start, end);
        break;
      case 17:
        if (equalsLower(text, start, nameEnd, "transfer-encoding")) {
          hasTransferEncoding = true;
          chunked = text.slice(valueStart, end).toLowerCase().split(",").at(-1)?.trim() === "chunked";
          (transferEncoding ??= []).push(start, end);
        }
        break;
      case 18:
        if (equalsLower(text, start, nameEnd, "proxy-authenticate")) (drop ??= []).push(start, end);
        break;
    }
  }
  const tokens = connection === undefined ? undefined : connection.split(",").map((t) => t.trim());
  if (tokens) dropNamed(text, tokens, (drop ??= []));
  // Transfer-Encoding wins over Content-Length (RFC 9112 §6.3), and the latter must not reach the client.
  if (hasTransferEncoding && contentLengthLines) (drop ??= []).push(...contentLengthLines);

  let framing: Framing;
  if (method === "HEAD" || status < 200 || status === 204 || status === 304) framing = "none";
  else if (hasTransferEncoding) framing = chunked ? "chunked" : "close";
  else if (contentLength >= 0) framing = contentLength === 0 ? "none" : "length";
  else framing = "close";
  const keepAlive = framing !== "close" && (minor === 1 ? !tokens?.includes("close") : (tokens?.includes("keep-alive") ?? false));
  return {
    text,
    status,
    framing,
    contentLength,
    keepAlive,
    drop: drop === undefined ? NONE : drop.length > 2 ? sortPairs(drop) : drop,
    transferEncoding: transferEncoding ?? NONE,
    upgraded: status === 101 && upgradeWebsocket && (tokens?.includes("upgrade") ?? false),
  };
}

/** Adds the field lines named by Connection tokens (other than close, keep-alive, upgrade) to `drop`. */
function dropNamed(text: string, tokens: readonly string[], drop: number[]): void {
  const names = tokens.filter((t) => t && t !== "close" && t !== "keep-alive" && t !== "upgrade" && t !== "content-length" && t !== "transfer-encoding");
  if (names.length === 0) return;
  let pos = text.indexOf("\r\n") + 2;
  while (pos > 1 && pos < text.length) {
    let end = text.indexOf("\r\n", pos);
    if (end < 0) end = text.length;
    const colon = text.indexOf(":", pos);
    if (names.some((name) => equalsLower(text, pos, colon, name)) && !drop.includes(pos)) drop.push(pos, end);
    pos = end + 2;
  }
}

function sortPairs(pairs: number[]): number[] {
  const list: [number, number][] = [];
  for (let i = 0; i < pairs.length; i += 2) list.push([pairs[i] as number, pairs[i + 1] as number]);
  list.sort((a, b) => a[0] - b[0]);
  return list.flat();
}

export interface ClientHeadOptions {
  /** The body is de-chunked for an HTTP/1.0 client: Transfer-Encoding goes too. */
  readonly dechunk: boolean;
  /** A Connection field for the client: "close" when Fulcrum closes after this response, "keep-alive" for a kept HTTP/1.0 client. */
  readonly connection: "close" | "keep-alive" | null;
}

/**
 * The head the client receives, ending with its blank line; null when the
 * received head can go as it is (nothing to drop, nothing to add, HTTP/1.1:
 * the common case, written without a copy).
 */
export function clientHead(head: ResponseHead, options: ClientHeadOptions): string | null {
  const { text } = head;
  const drop = options.dechunk && head.transferEncoding.length > 0 ? sortPairs([...head.drop, ...head.transferEncoding]) : head.drop;
  const http10 = text.charCodeAt(7) === 48;
  if (drop.length === 0 && options.connection === null && !http10) return null;
  // Fulcrum speaks HTTP/1.1 to its clients, whatever the backend spoke (RFC 9110 §6.2).
  let out = http10 ? `HTTP/1.1${text.slice(8, firstLineEnd(text))}` : text.slice(0, firstLineEnd(text));
  let cursor = firstLineEnd(text);
  for (let i = 0; i < drop.length; i += 2) {
    const start = drop[i] as number;
    if (start > cursor) out += text.slice(cursor, start - 2); // up to the CRLF before the dropped line
    cursor = (drop[i + 1] as number);
  }
  if (cursor < text.length) out += text.slice(cursor);
  if (options.connection) out += `\r\nconnection: ${options.connection}`;
  return `${out}\r\n\r\n`;
}

function firstLineEnd(text: string): number {
  const end = text.indexOf("\r\n");
  return end < 0 ? text.length : end;
}
