/**
 * Static backends in the config: URL strings, `{ url, weight }`, or the
 * distributed balancer's `{ host, port }`, each normalized to an origin.
 */
import { Fields, isPlainObject, show, type ConfigIssue } from "./fields.ts";
import type { ResolvedBackend, ResolvedConfig } from "./schema.ts";

/** `http://host[:port]` with no path: returns the normalized origin or a problem. */
export function parseBackendUrl(text: string): { url: string; host: string; port: number } | string {
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    return "must be a URL like http://127.0.0.1:3001";
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return "must start with http:// or https://";
  if ((parsed.pathname !== "/" && parsed.pathname !== "") || parsed.search || parsed.hash) {
    return "must be an origin without a path (http://host:port)";
  }
  if (parsed.username || parsed.password) return "must not contain credentials";
  const port = parsed.port ? Number(parsed.port) : parsed.protocol === "https:" ? 443 : 80;
  return { url: `${parsed.protocol}//${parsed.host}`, host: parsed.host, port };
}

export function readBackends(root: Fields, issues: ConfigIssue[]): ResolvedConfig["backends"] {
  const list = root.raw("backends");
  if (list === undefined) return [];
  if (!Array.isArray(list)) {
    root.fail("backends", `must be a list of URLs or { url, weight } objects, got ${show(list)}`);
    return [];
  }
  const out: ResolvedBackend[] = [];
  list.forEach((entry, i) => {
    const path = `backends[${i}]`;
    const item = new Fields(isPlainObject(entry) ? entry : { url: entry }, path, issues);
    // The distributed balancer's backends.json wrote { host, port }.
    const url = item.has("host")
      ? `http://${String(item.raw("host"))}:${String(item.raw("port"))}`
      : item.raw("url");
    const weight = item.number("weight", 1, { min: 0, max: 1_000_000 });
    const maxConnections = item.number("maxConnections", 0, { integer: true, min: 0, max: 1_000_000 });
    if (isPlainObject(entry)) item.rejectUnknown();
    const parsed = typeof url === "string" ? parseBackendUrl(url) : "must be a URL string";
    if (typeof parsed === "string") issues.push({ path: isPlainObject(entry) && !item.has("host") ? `${path}.url` : path, message: `${parsed}, got ${show(url)}` });
    else out.push({ ...parsed, weight, maxConnections });
  });
  return out;
}
