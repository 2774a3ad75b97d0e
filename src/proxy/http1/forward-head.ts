/**
 * The request head a backend receives, assembled once from slices of the
 * client's head plus Fulcrum's own lines. Pure. What changes:
 * - the request line: the method and target as received (an absolute-form
 *   target becomes its path and query), always HTTP/1.1;
 * - hop-by-hop fields (Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
 *   Upgrade, Proxy-Authorization), the fields the client's Connection names,
 *   Expect (Fulcrum answers 100-continue itself) and `_` spellings of fields
 *   Fulcrum controls are dropped; Host and the framing fields are never
 *   dropped because Connection names them (they are Fulcrum's to set);
 * - framing is regenerated from what Fulcrum parsed: `content-length: N`, or
 *   `transfer-encoding: chunked` (Fulcrum re-frames chunked bodies itself);
 * - X-Forwarded-For gets the peer appended; X-Forwarded-Proto and -Host are
 *   set unless a trusted proxy set them; X-Request-Id is added when absent;
 *   Host follows `proxy.preserveHost`;
 * - a WebSocket handshake keeps `Connection: upgrade` and its Upgrade field.
 * Every other field line is copied byte for byte, in order.
 */
import { equalsLower } from "./chars.ts";
import { Field, type RequestHead } from "./request-head.ts";

export interface ForwardFacts {
  readonly peerIp: string;
  /** The peer is a trusted proxy (`proxy.trustProxy`): its X-Forwarded-Proto/-Host are kept. */
  readonly peerTrusted: boolean;
  readonly proto: "http" | "https";
  /** The Host to send: the client's (preserveHost) or the backend's. */
  readonly host: string;
  /** Makes the X-Request-Id when the client sent none (called only then). */
  readonly requestId: () => string;
  /** How the body goes upstream. */
  readonly body: "none" | "length" | "chunked";
}

export function forwardHead(head: RequestHead, facts: ForwardFacts): string {
  const { text, special } = head;
  let out = `${head.method} ${head.path} HTTP/1.1\r\n`;
  // The client's Host line goes as it is when it is the one to send (the common case).
  const keepHost = head.path === head.target && head.host === facts.host;
  const keepForwarded = facts.peerTrusted;
  let cursor = head.fieldsStart;
  for (let i = 0; i < special.length; i += 3) {
    const kind = special[i] as number;
    const start = special[i + 1] as number;
    const end = special[i + 2] as number;
    if (kind === Field.XRequestId || (kind === Field.Host && keepHost)) continue;
    if (keepForwarded && (kind === Field.XForwardedProto || kind === Field.XForwardedHost)) continue;
    // Dropped: copy what came before it, skip the line and its CRLF.
    if (start > cursor) out += text.slice(cursor, start);
    cursor = end + 2;
  }
  if (cursor < text.length) out += `${text.slice(cursor)}\r\n`;
  if (head.connectionNames) out = dropNamed(out, head.connectionNames);

  if (!keepHost) out += `host: ${facts.host}\r\n`;
  out += `x-forwarded-for: ${head.forwardedFor ? `${head.forwardedFor}, ${facts.peerIp}` : facts.peerIp}\r\n`;
  if (!keepForwarded || head.forwardedProto === null) out += `x-forwarded-proto: ${facts.proto}\r\n`;
  if ((!keepForwarded || head.forwardedHost === null) && head.host !== null) out += `x-forwarded-host: ${head.host}\r\n`;
  if (head.requestId === null) out += `x-request-id: ${facts.requestId()}\r\n`;
  if (facts.body === "length") out += `content-length: ${head.contentLength}\r\n`;
  else if (facts.body === "chunked") out += "transfer-encoding: chunked\r\n";
  if (head.websocket) out += `connection: upgrade\r\nupgrade: ${upgradeValue(head)}\r\n`;
  return `${out}\r\n`;
}

/** Fields a client's Connection header cannot remove: Fulcrum sets them itself (the audit's `Connection: keep-alive, Host`). */
const PROTECTED = new Set(["host", "content-length", "transfer-encoding", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id"]);

/** Removes the field lines of `out` (after its request line) named by the client's Connection header. Rare: most clients name none. */
function dropNamed(out: string, connectionNames: readonly string[]): string {
  const names = connectionNames.filter((name) => !PROTECTED.has(name));
  if (names.length === 0) return out;
  const lines = out.split("\r\n");
  const kept = [lines[0] as string];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(":");
    if (colon > 0 && names.some((name) => equalsLower(line, 0, colon, name))) continue;
    kept.push(line);
  }
  return kept.join("\r\n");
}

/** The client's Upgrade value (only WebSocket handshakes forward one). */
function upgradeValue(head: RequestHead): string {
  const { text, special } = head;
  for (let i = 0; i < special.length; i += 3) {
    if (special[i] !== Field.Upgrade) continue;
    const start = special[i + 1] as number;
    return text.slice(text.indexOf(":", start) + 1, special[i + 2] as number).trim();
  }
  return "websocket";
}
