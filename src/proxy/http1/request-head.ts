/**
 * A strict HTTP/1.1 request head parser (RFC 9112 §2-§3, §5-§7), held to what
 * the parsers proxies trust enforce (llhttp strict mode, HAProxy, nginx). Pure:
 * it takes the head as latin1 text (request line and fields, without the blank
 * line that ends them) and returns either what Fulcrum needs to route and
 * forward the request, or the 4xx/5xx to refuse it with. Nothing it refuses is
 * ever forwarded.
 *
 * Rules: exactly one SP between method, target and version; the method and
 * field names are tokens; the target is visible ASCII (raw UTF-8 and CTLs are
 * refused, as llhttp strict does); HTTP/1.0 or HTTP/1.1 only (else 505); CRLF
 * line ends only (the caller splits on CRLF; a lone CR or LF is a CTL here);
 * no obs-fold; no whitespace before the colon; no CTLs in values; HTTP/1.1
 * needs exactly one valid Host; Transfer-Encoding must be exactly `chunked`
 * (other codings 501), never with Content-Length and never on HTTP/1.0;
 * Content-Length is digits only, identical repeats merged, differing ones
 * refused; CONNECT is refused (a reverse proxy opens no tunnels); limits on
 * the request line (414), the head and the field count (431).
 *
 * The fields Fulcrum rewrites or drops are located (kind and line range) so
 * the forwarder (forward-head.ts) can copy everything else byte for byte.
 */
import { CHAR_CLASS, equalsLower, FIELD, TARGET, TCHAR } from "./chars.ts";

export const MAX_REQUEST_LINE = 8 * 1024;
export const MAX_HEAD_BYTES = 32 * 1024;
export const MAX_FIELDS = 100;

/** Fields Fulcrum acts on (the kinds in `RequestHead.special`); every other field is forwarded as received. */
export const Field = {
  Host: 1,
  ContentLength: 2,
  TransferEncoding: 3,
  Connection: 4,
  /** Keep-Alive, Proxy-Connection, TE, Trailer, Proxy-Authorization: hop-by-hop, never forwarded. */
  HopByHop: 5,
  Upgrade: 6,
  Expect: 7,
  XForwardedFor: 8,
  XForwardedProto: 9,
  XForwardedHost: 10,
  /** A name with `_` that reads as one Fulcrum controls with `-` (Transfer_Encoding): dropped, as nginx drops them. */
  Shadow: 11,
  /** Kept as sent; Fulcrum adds one when absent. */
  XRequestId: 12,
} as const;

export interface RequestHead {
  /** The head as received (latin1), request line included. */
  readonly text: string;
  readonly method: string;
  /** The request-target exactly as sent (absolute-form included). */
  readonly target: string;
  /** What the backend is sent as target: `target`, or the path and query of an absolute-form target. */
  readonly path: string;
  /** HTTP/1.minor: 0 or 1. */
  readonly minor: number;
  /** Where the field lines start in `text` (after the request line's CRLF); equals text.length when there are none. */
  readonly fieldsStart: number;
  /** [kind, start, end) of every field line Fulcrum acts on, in order; `end` is the index of the line's CR or text.length. */
  readonly special: readonly number[];
  /** Host to route and forward with: the Host field, or the authority of an absolute-form target; null when none. */
  readonly host: string | null;
  /** -1 when the request has no Content-Length. */
  readonly contentLength: number;
  readonly chunked: boolean;
  /** The client wants the connection kept open after this exchange (HTTP/1.1 default, HTTP/1.0 `keep-alive`). */
  readonly keepAlive: boolean;
  /** Lower-case Connection tokens other than close, keep-alive and upgrade (field names to drop), or null. */
  readonly connectionNames: readonly string[] | null;
  /** A WebSocket handshake: `Upgrade: websocket` with `Connection: upgrade`. */
  readonly websocket: boolean;
  readonly expectContinue: boolean;
  readonly forwardedFor: string | null;
  readonly forwardedProto: string | null;
  readonly forwardedHost: string | null;
  readonly requestId: string | null;
  /** Some byte of the head is ≥ 0x80 (obs-text in a value): it must be written as latin1, not UTF-8. */
  readonly nonAscii: boolean;
}

export interface HeadError {
  readonly status: 400 | 405 | 414 | 417 | 431 | 501 | 505;
  readonly reason: string;
}

const err = (status: HeadError["status"], reason: string): HeadError => ({ status, reason });

export function isHeadError(result: RequestHead | HeadError): result is HeadError {
  return (result as HeadError).status !== undefined;
}

/** uri-host [ ":" port ] (RFC 9110 §7.2): a reg-name or IPv4, or an IPv6 literal in brackets. */
const HOST = /^(?:[A-Za-z0-9\-._~!$&'()*+;=%]+|\[[0-9A-Fa-f:.]+\])(?::\d{0,5})?$/;
const DIGITS = /^\d{1,15}$/;

/**
 * The methods Fulcrum forwards: llhttp's HTTP methods (what Node and Bun
 * backends parse). Any other token gets 501 (RFC 9110 §9.1) instead of being
 * forwarded to a backend that would drop the connection, a failure that would
 * count against a healthy backend.
 */
const METHODS = new Set([
  "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "CONNECT",
  "COPY", "LOCK", "MKCOL", "MOVE", "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK", "BIND", "REBIND", "UNBIND", "ACL",
  "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "PURGE", "MKCALENDAR",
  "LINK", "UNLINK", "SOURCE", "QUERY",
]);

/** The kind of the field named text[start, end), or 0 for "forward as is". */
function fieldKind(text: string, start: number, end: number, underscore: boolean): number {
  if (underscore) return shadowKind(text, start, end);
  switch (end - start) {
    case 2:
      return equalsLower(text, start, end, "te") ? Field.HopByHop : 0;
    case 4:
      return equalsLower(text, start, end, "host") ? Field.Host : 0;
    case 6:
      return equalsLower(text, start, end, "expect") ? Field.Expect : 0;
    case 7:
      if (equalsLower(text, start, end, "upgrade")) return Field.Upgrade;
      return equalsLower(text, start, end, "trailer") ? Field.HopByHop : 0;
    case 10:
      if (equalsLower(text, start, end, "connection")) return Field.Connection;
      return equalsLower(text, start, end, "keep-alive") ? Field.HopByHop : 0;
    case 12:
      return equalsLower(text, start, end, "x-request-id") ? Field.XRequestId : 0;
    case 14:
      return equalsLower(text, start, end, "content-length") ? Field.ContentLength : 0;
    case 15:
      return equalsLower(text, start, end, "x-forwarded-for") ? Field.XForwardedFor : 0;
    case 16:
      if (equalsLower(text, start, end, "x-forwarded-host")) return Field.XForwardedHost;
      return equalsLower(text, start, end, "proxy-connection") ? Field.HopByHop : 0;
    case 17:
      if (equalsLower(text, start, end, "transfer-encoding")) return Field.TransferEncoding;
      return equalsLower(text, start, end, "x-forwarded-proto") ? Field.XForwardedProto : 0;
    case 19:
      return equalsLower(text, start, end, "proxy-authorization") ? Field.HopByHop : 0;
    default:
      return 0;
  }
}

/** Names Fulcrum controls, spelled with `_` for `-`: a backend that maps `_` to `-` (CGI, some frameworks) would read them as the real thing. */
const SHADOWED = new Set(["content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip", "x-request-id"]);

function shadowKind(text: string, start: number, end: number): number {
  return SHADOWED.has(text.slice(start, end).toLowerCase().replaceAll("_", "-")) ? Field.Shadow : 0;
}

/** Trims OWS (SP / HTAB) from both ends of text[start, end) and returns the value. */
function valueOf(text: string, start: number, end: number): string {
  while (start < end && (text.charCodeAt(start) === 32 || text.charCodeAt(start) === 9)) start++;
  while (end > start && (text.charCodeAt(end - 1) === 32 || text.charCodeAt(end - 1) === 9)) end--;
  return text.slice(start, end);
}

/** Comma-separated list elements, lower-cased and trimmed, empty ones skipped (RFC 9110 §5.6.1). */
function listTokens(value: string): string[] {
  const tokens: string[] = [];
  for (const part of value.split(",")) {
    const token = part.trim().toLowerCase();
    if (token) tokens.push(token);
  }
  return tokens;
}

function isToken(value: string): boolean {
  if (value.length === 0) return false;
  for (let i = 0; i < value.length; i++) if (((CHAR_CLASS[value.charCodeAt(i)] as number) & TCHAR) === 0) return false;
  return true;
}

/** Parses the request line; returns the index after its CRLF or an error. */
function requestLine(text: string, out: { method: string; target: string; minor: number }): number | HeadError {
  const lineEnd = text.indexOf("\r\n");
  const end = lineEnd < 0 ? text.length : lineEnd;
  if (end > MAX_REQUEST_LINE) return err(414, "request line too long");
  let i = 0;
  while (i < end && ((CHAR_CLASS[text.charCodeAt(i)] as number) & TCHAR) !== 0) i++;
  if (i === 0 || text.charCodeAt(i) !== 32) return err(400, "invalid method");
  out.method = text.slice(0, i);
  const targetStart = ++i;
  while (i < end && ((CHAR_CLASS[text.charCodeAt(i)] as number) & TARGET) !== 0) i++;
  if (i === targetStart || text.charCodeAt(i) !== 32) return err(400, "invalid request target");
  out.target = text.slice(targetStart, i);
  i++;
  if (end - i !== 8 || !text.startsWith("HTTP/", i) || text.charCodeAt(i + 6) !== 46) return err(400, "invalid HTTP version");
  const major = text.charCodeAt(i + 5) - 48;
  const minor = text.charCodeAt(i + 7) - 48;
  if (major < 0 || major > 9 || minor < 0 || minor > 9) return err(400, "invalid HTTP version");
  if (major !== 1 || minor > 1) return err(505, "HTTP version not supported");
  out.minor = minor;
  return lineEnd < 0 ? text.length : lineEnd + 2;
}

/**
 * Checks the start of a head whose end has not arrived yet, so that a request
 * that is already invalid is refused at once instead of after the header timeout.
 */
export function checkPartialHead(text: string): HeadError | undefined {
  const firstLineEnd = text.indexOf("\r\n");
  if (firstLineEnd < 0 ? text.length > MAX_REQUEST_LINE : firstLineEnd > MAX_REQUEST_LINE) return err(414, "request line too long");
  if (text.length > MAX_HEAD_BYTES) return err(431, "request head too large");
  // A lone LF or CR, or any other CTL outside a CRLF, already makes the head invalid.
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 32 || c === 9) continue;
    if (c === 13 && (i === text.length - 1 || text.charCodeAt(i + 1) === 10)) continue;
    if (c === 10 && text.charCodeAt(i - 1) === 13) continue;
    return err(400, "invalid character in request head");
  }
  if (firstLineEnd < 0) return partialRequestLine(text);
  const lastLine = text.lastIndexOf("\r\n");
  // The line being received may already be a fold (or whitespace after the request line).
  const next = text.charCodeAt(lastLine + 2);
  if (next === 32 || next === 9) return err(400, "obsolete line folding");
  const complete = parseRequestHead(text.slice(0, lastLine), { partial: true });
  return isHeadError(complete) ? complete : undefined;
}

/** A request line still arriving: its method, target and as much of the version as came must already be valid. */
function partialRequestLine(text: string): HeadError | undefined {
  const first = text.indexOf(" ");
  if (first < 0) return undefined;
  const second = text.indexOf(" ", first + 1);
  if (second < 0) return undefined;
  const version = text.slice(second + 1).replace(/\r$/, "");
  const known = version.length <= 8 && ("HTTP/1.1".startsWith(version) || "HTTP/1.0".startsWith(version));
  if (known) return undefined;
  // Let the full parser name the problem (method, target, version or 505).
  const full = parseRequestHead(version.length >= 8 ? text.slice(0, second + 9) : `${text}\x00`, { partial: true });
  return isHeadError(full) ? full : err(400, "invalid HTTP version");
}

export interface ParseOptions {
  /** Only the complete lines of a head still arriving (checkPartialHead): skip the checks that need every field. */
  readonly partial?: boolean;
  /**
   * Refuse an HTTP/1.1 request without Host (RFC 9112 §3.2). On in Fulcrum;
   * the llhttp conformance test turns it off, because llhttp does not check it.
   */
  readonly requireHost?: boolean;
}

/** Parses a complete head. */
export function parseRequestHead(text: string, options: ParseOptions = {}): RequestHead | HeadError {
  const partial = options.partial === true;
  if (text.length > MAX_HEAD_BYTES) return err(431, "request head too large");
  const line = { method: "", target: "", minor: 1 };
  const fieldsStart = requestLine(text, line);
  if (typeof fieldsStart !== "number") return fieldsStart;
  const { method, target, minor } = line;

  const special: number[] = [];
  let host: string | null = null;
  let hosts = 0;
  let contentLength = -1;
  let lengthText: string | null = null;
  let transferEncoding: string[] | null = null;
  let connection: string[] | null = null;
  let upgrade: string | null = null;
  let expect: string | null = null;
  let forwardedFor: string | null = null;
  let forwardedProto: string | null = null;
  let forwardedHost: string | null = null;
  let requestId: string | null = null;
  let nonAscii = false;
  let fields = 0;

  let pos = fieldsStart;
  const length = text.length;
  while (pos < length) {
    if (++fields > MAX_FIELDS) return err(431, "too many header fields");
    const lineStart = pos;
    // Field name: a token, then the colon at once (no whitespace before it, RFC 9112 §5.1).
    let underscore = false;
    let c = text.charCodeAt(pos);
    if (c === 32 || c === 9) return err(400, "obsolete line folding");
    while (pos < length && ((CHAR_CLASS[(c = text.charCodeAt(pos))] as number) & TCHAR) !== 0) {
      if (c === 95) underscore = true;
      pos++;
    }
    if (pos === lineStart) return err(400, "invalid header field name");
    if (c !== 58) return err(400, c === 32 || c === 9 ? "whitespace before colon" : "invalid header field name");
    const nameEnd = pos++;
    // Value: field-vchar, obs-text, SP, HTAB up to CRLF; any other CTL (a lone CR or LF, NUL) is refused.
    const valueStart = pos;
    while (pos < length && ((CHAR_CLASS[(c = text.charCodeAt(pos))] as number) & FIELD) !== 0) {
      if (c >= 128) nonAscii = true;
      pos++;
    }
    const lineEnd = pos;
    if (pos < length) {
      if (c !== 13 || text.charCodeAt(pos + 1) !== 10) return err(400, "invalid character in header value");
      pos += 2;
      if (pos === length) return err(400, "invalid header line"); // the head cannot end with a CRLF: that would be its blank line
    }
    const kind = fieldKind(text, lineStart, nameEnd, underscore);
    if (kind === 0) continue;
    special.push(kind, lineStart, lineEnd);
    const value = valueOf(text, valueStart, lineEnd);
    switch (kind) {
      case Field.Host:
        hosts++;
        host = value;
        break;
      case Field.ContentLength: {
        // "5, 5" (a list) and a repeated field are merged when every value is the same, digit for digit (RFC 9110 §8.6).
        for (const part of value.split(",")) {
          const digits = part.trim();
          if (!DIGITS.test(digits)) return err(400, "invalid Content-Length");
          if (lengthText !== null && lengthText !== digits) return err(400, "conflicting Content-Length values");
          lengthText = digits;
          contentLength = Number(digits);
        }
        break;
      }
      case Field.TransferEncoding:
        transferEncoding = [...(transferEncoding ?? []), ...listTokens(value)];
        if (value.trim() === "") return err(400, "empty Transfer-Encoding");
        break;
      case Field.Connection:
        connection = [...(connection ?? []), ...listTokens(value)];
        break;
      case Field.Upgrade:
        upgrade = upgrade === null ? value : `${upgrade}, ${value}`;
        break;
      case Field.Expect:
        expect = expect === null ? value : `${expect}, ${value}`;
        break;
      case Field.XForwardedFor:
        forwardedFor = forwardedFor === null ? value : `${forwardedFor}, ${value}`;
        break;
      case Field.XForwardedProto:
        forwardedProto = value;
        break;
      case Field.XForwardedHost:
        forwardedHost = value;
        break;
      case Field.XRequestId:
        requestId ??= value;
        break;
    }
  }
  if (partial) return { text } as RequestHead;

  if (method === "CONNECT") return err(405, "CONNECT is not supported: Fulcrum is a reverse proxy");
  if (!METHODS.has(method)) return err(501, "method not implemented");
  // RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host, whatever the form of its target.
  if (hosts > 1) return err(400, "more than one Host header");
  if (minor === 1 && hosts === 0 && options.requireHost !== false) return err(400, "missing Host header");
  if (host !== null && !HOST.test(host)) return err(400, "invalid Host header");
  let path = target;
  if (target.charCodeAt(0) !== 47 /* / */) {
    const absolute = absoluteForm(target);
    if (absolute) {
      // RFC 9112 §3.2.2: the target's authority replaces Host.
      if (!HOST.test(absolute.authority)) return err(400, "invalid authority in request target");
      host = absolute.authority;
      path = absolute.path;
    } else if (!(target === "*" && method === "OPTIONS")) return err(400, "invalid request target");
  }

  let chunked = false;
  if (transferEncoding !== null) {
    if (minor === 0) return err(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (contentLength !== -1) return err(400, "both Content-Length and Transfer-Encoding");
    if (!transferEncoding.every(isToken)) return err(400, "invalid Transfer-Encoding");
    if (transferEncoding.at(-1) !== "chunked") return err(400, "Transfer-Encoding does not end in chunked");
    if (transferEncoding.length > 1) return transferEncoding.indexOf("chunked") < transferEncoding.length - 1 ? err(400, "chunked applied more than once") : err(501, "transfer coding not supported");
    chunked = true;
  }

  let keepAlive = minor === 1;
  let connectionNames: string[] | null = null;
  let upgradeToken = false;
  if (connection !== null) {
    for (const token of connection) {
      if (token === "close") keepAlive = false;
      else if (token === "keep-alive") keepAlive ||= minor === 0 && !connection.includes("close");
      else if (token === "upgrade") upgradeToken = true;
      else if (isToken(token)) (connectionNames ??= []).push(token);
      else return err(400, "invalid Connection header");
    }
  }
  const websocket = upgradeToken && upgrade !== null && minor === 1 && listTokens(upgrade).some((t) => t === "websocket" || t.startsWith("websocket/"));

  let expectContinue = false;
  if (expect !== null) {
    if (expect.trim().toLowerCase() !== "100-continue") return err(417, "unsupported expectation");
    // HTTP/1.0 clients do not know 100 Continue (RFC 9110 §10.1.1): the expectation is ignored.
    expectContinue = minor === 1;
  }

  return {
    text,
    method,
    target,
    path,
    minor,
    fieldsStart,
    special,
    host,
    contentLength,
    chunked,
    keepAlive,
    connectionNames,
    websocket,
    expectContinue,
    forwardedFor,
    forwardedProto,
    forwardedHost,
    requestId,
    nonAscii,
  };
}

/** `http://authority/path?query` → its authority and `/path?query` (the path "/" when absent); undefined if not absolute-form. */
function absoluteForm(target: string): { authority: string; path: string } | undefined {
  const colon = target.indexOf("://");
  if (colon < 0) return undefined;
  const scheme = target.slice(0, colon).toLowerCase();
  if (scheme !== "http" && scheme !== "https") return undefined;
  const start = colon + 3;
  let end = start;
  while (end < target.length && target.charCodeAt(end) !== 47 && target.charCodeAt(end) !== 63) end++;
  const authority = target.slice(start, end);
  if (authority.length === 0 || authority.includes("@")) return undefined;
  const rest = target.slice(end);
  return { authority, path: rest.startsWith("/") ? rest : `/${rest}` };
}

/** The value of the first field named `name`, case-insensitively (for header-keyed strategies and rate limits), or null. */
export function fieldValue(head: RequestHead, name: string): string | null {
  const lowerName = name.toLowerCase();
  const text = head.text;
  let pos = head.fieldsStart;
  while (pos < text.length) {
    let end = text.indexOf("\r\n", pos);
    if (end < 0) end = text.length;
    const colon = text.indexOf(":", pos);
    if (equalsLower(text, pos, colon, lowerName)) return valueOf(text, colon + 1, end);
    pos = end + 2;
  }
  return null;
}

/** Every field as [name, value], for the rare paths that need a `Headers` object (the balancer's own endpoints). */
export function fieldList(head: RequestHead): [string, string][] {
  const text = head.text;
  const fields: [string, string][] = [];
  let pos = head.fieldsStart;
  while (pos < text.length) {
    let end = text.indexOf("\r\n", pos);
    if (end < 0) end = text.length;
    const colon = text.indexOf(":", pos);
    fields.push([text.slice(pos, colon), valueOf(text, colon + 1, end)]);
    pos = end + 2;
  }
  return fields;
}

