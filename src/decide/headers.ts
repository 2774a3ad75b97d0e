/**
 * Header rewriting between client and backend (RFC 9110 §7.6.1, and what
 * nginx/HAProxy/Envoy do). Pure: takes the incoming headers, returns a new
 * `Headers` for the other side; ids and addresses are passed in.
 */

/** Connection-specific headers that must never be forwarded (RFC 9110 §7.6.1, RFC 2616 §13.5.1). */
export const HOP_BY_HOP: readonly string[] = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];

/**
 * Removes hop-by-hop headers and every header the `Connection` header names,
 * in place. Used both ways: on the request to the backend, and on the backend's
 * response before it goes to the client (each `Set-Cookie` stays its own header).
 */
export function stripHopByHop(headers: Headers): void {
  const connection = headers.get("connection");
  if (connection) {
    for (const token of connection.split(",")) {
      const name = token.trim().toLowerCase();
      if (name) headers.delete(name);
    }
  }
  for (const name of HOP_BY_HOP) headers.delete(name);
}

export interface ForwardFacts {
  /** The TCP peer's address. */
  readonly peerIp: string;
  /** Whether that peer's `X-Forwarded-*` headers are believed (`proxy.trustProxy`). */
  readonly peerTrusted: boolean;
  /** Scheme the client used to reach Fulcrum. */
  readonly proto: "http" | "https";
  /** Id for `X-Request-Id` when the client sent none. */
  readonly newRequestId: () => string;
}

/**
 * Rewrites a request's headers, in place, into what the backend receives
 * (Bun's request headers are mutable, and not copying them is a measurable
 * part of the per-request cost):
 * - hop-by-hop headers removed;
 * - the peer address appended to `X-Forwarded-For` (a chain: each hop appends,
 *   the backend decides how many hops it trusts);
 * - `X-Forwarded-Proto` and `X-Forwarded-Host` set from what this hop saw, unless
 *   a trusted proxy in front already set them (an untrusted client could spoof them);
 * - `X-Request-Id` kept if present, generated otherwise.
 * `Host` is decided per attempt, by `upstreamHost`.
 */
export function forwardRequestHeaders(headers: Headers, facts: ForwardFacts): Headers {
  const host = headers.get("host");
  stripHopByHop(headers);
  const chain = headers.get("x-forwarded-for");
  headers.set("x-forwarded-for", chain ? `${chain}, ${facts.peerIp}` : facts.peerIp);
  if (!facts.peerTrusted || !headers.has("x-forwarded-proto")) headers.set("x-forwarded-proto", facts.proto);
  if (!facts.peerTrusted || !headers.has("x-forwarded-host")) {
    if (host) headers.set("x-forwarded-host", host);
    else headers.delete("x-forwarded-host");
  }
  if (!headers.has("x-request-id")) headers.set("x-request-id", facts.newRequestId());
  return headers;
}

/** The `Host` a backend receives: the client's (`preserveHost`), or the backend's own when not preserving or the client sent none. */
export function upstreamHost(clientHost: string | null, preserveHost: boolean, backendHost: string): string {
  return preserveHost && clientHost ? clientHost : backendHost;
}

/**
 * The client address Fulcrum believes: the peer, or — when the peer is a
 * trusted proxy — the right-most `X-Forwarded-For` entry that is not itself
 * trusted (the first hop a trusted proxy saw).
 */
export function believedClientIp(peerIp: string, forwardedFor: string | null, isTrusted: (ip: string) => boolean): string {
  if (!forwardedFor || !isTrusted(peerIp)) return peerIp;
  const hops = forwardedFor.split(",");
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = (hops[i] ?? "").trim();
    if (hop && !isTrusted(hop)) return hop;
  }
  return (hops[0] ?? "").trim() || peerIp;
}
