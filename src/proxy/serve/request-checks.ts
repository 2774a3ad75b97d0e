/**
 * Checks on a client request before it is routed anywhere, and the request
 * target as Fulcrum forwards it. Pure.
 */

/**
 * Path and query from `Request.url`. Bun gives an absolute URL normally, but
 * only the path when the Host header is unusable; both are handled so the
 * path a backend sees is always the one the client sent.
 */
export function pathOf(url: string): string {
  if (url.charCodeAt(0) === 47 /* "/" */) return url;
  const slash = url.indexOf("/", url.indexOf("//") + 2);
  return slash < 0 ? "/" : url.slice(slash);
}

/** uri-host [ ":" port ] (RFC 9110 §7.2): a reg-name or IPv4, or an IPv6 literal in brackets. */
const HOST = /^(?:[A-Za-z0-9\-._~!$&'()*+;=%]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

export interface Rejection {
  readonly status: 400 | 405;
  readonly message: string;
}

/** A request Fulcrum refuses outright, or undefined. */
export function rejectRequest(method: string, host: string | null): Rejection | undefined {
  // Fulcrum is a reverse proxy: relaying a backend's 2xx to CONNECT would tell the client a tunnel is open.
  if (method === "CONNECT") return { status: 405, message: "CONNECT is not supported: Fulcrum is a reverse proxy" };
  // Two Host lines reach us merged ("a, b"), so one check covers both (RFC 9112 §3.2: 400 either way).
  if (host !== null && !HOST.test(host)) return { status: 400, message: "invalid or repeated Host header" };
  return undefined;
}

/**
 * A Content-Length Fulcrum can forward: one decimal value. A list of identical
 * values (the same header sent twice, merged) becomes that value, as RFC 9110
 * §8.6 allows; anything else is undefined (the request gets a 400).
 */
export function normalizeContentLength(value: string): string | undefined {
  if (/^\d{1,15}$/.test(value)) return value;
  const values = value.split(",").map((v) => v.trim());
  const first = values[0] ?? "";
  return /^\d{1,15}$/.test(first) && values.every((v) => v === first) ? first : undefined;
}
