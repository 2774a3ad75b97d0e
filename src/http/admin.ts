/**
 * `/lb-admin/...`: mutations, JSON in and out, behind `Authorization: Bearer
 * <admin.token>` (401 without it or with a wrong one, 403 when no token is
 * configured). Tokens are compared in constant time.
 *
 *   POST   /lb-admin/backends              {url, weight?}  add a static backend
 *   DELETE /lb-admin/backends/<id>                         drain, then remove one
 *   POST   /lb-admin/backends/<id>/drain                   stop new traffic to one
 *   POST   /lb-admin/scale                 {desired}       set managed instances (clamped to min..max)
 *   POST   /lb-admin/reload                                reload the config (like SIGHUP)
 *   POST   /lb-admin/restart                               rolling restart (like SIGUSR2)
 */
import { timingSafeEqual } from "node:crypto";
import { isPlainObject } from "../config/fields.ts";

/** What the admin API can ask of the balancer; each returns a result or an error message. */
/** An admin change that could not be made, with the status to answer. */
export interface Refusal {
  readonly ok: false;
  readonly status: number;
  readonly error: string;
}

export interface AdminActions {
  addBackend(url: string, weight: number): Promise<{ ok: true; backend: unknown } | Refusal>;
  /** false: no such backend. */
  removeBackend(id: string): Promise<boolean | Refusal>;
  drainBackend(id: string): Promise<boolean | Refusal>;
  scale(desired: number): { ok: true; desired: number; clamped: boolean } | { ok: false; status: number; error: string };
  reload(): Promise<{ ok: true; changes: string[] } | { ok: false; errors: string[] }>;
  restart(): { ok: true; instances: number } | { ok: false; status: number; error: string };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) => Response.json(body, { status, headers });
const error = (status: number, message: string, extra: Record<string, unknown> = {}) => json(status, { error: message, ...extra });

function tokenMatches(given: string, expected: string): boolean {
  // Hash both so the comparison takes the same time whatever the lengths.
  const a = new Bun.CryptoHasher("sha256").update(given).digest();
  const b = new Bun.CryptoHasher("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

async function readJson(req: Request): Promise<Record<string, unknown> | string> {
  let body: unknown;
  try {
    body = await req.json();
  } catch {
    return "body must be a JSON object";
  }
  return isPlainObject(body) ? body : "body must be a JSON object";
}

export function createAdmin(token: string | null, actions: AdminActions) {
  return async function admin(req: Request, path: string): Promise<Response> {
    if (token === null) return error(403, "admin API disabled: set admin.token in the config");
    const auth = req.headers.get("authorization") ?? "";
    const given = auth.startsWith("Bearer ") ? auth.slice(7) : "";
    if (!given || !tokenMatches(given, token)) {
      return json(401, { error: "missing or wrong bearer token" }, { "www-authenticate": 'Bearer realm="fulcrum"' });
    }

    const route = path.split("?", 1)[0] ?? "";
    const parts = route.split("/").filter(Boolean).slice(1); // drop "lb-admin"
    const method = req.method;
    const [resource, id, verb] = parts;

    if (resource === "backends" && parts.length === 1) {
      if (method !== "POST") return error(405, "use POST");
      const body = await readJson(req);
      if (typeof body === "string") return error(400, body);
      if (typeof body.url !== "string") return error(400, "url: required, a URL like http://127.0.0.1:3001");
      const weight = body.weight ?? 1;
      if (typeof weight !== "number" || !Number.isFinite(weight) || weight < 0) return error(400, `weight: must be a number >= 0, got ${JSON.stringify(weight)}`);
      const added = await actions.addBackend(body.url, weight);
      return added.ok ? json(201, { backend: added.backend }) : error(added.status, added.error);
    }
    if (resource === "backends" && id && parts.length === 2) {
      if (method !== "DELETE") return error(405, "use DELETE");
      const removed = await actions.removeBackend(id);
      if (typeof removed === "object") return error(removed.status, removed.error);
      return removed ? json(200, { removed: id }) : error(404, `no backend with id ${JSON.stringify(id)}`);
    }
    if (resource === "backends" && id && verb === "drain" && parts.length === 3) {
      if (method !== "POST") return error(405, "use POST");
      const drained = await actions.drainBackend(id);
      if (typeof drained === "object") return error(drained.status, drained.error);
      return drained ? json(200, { id, state: "draining" }) : error(404, `no backend with id ${JSON.stringify(id)}`);
    }
    if (resource === "scale" && parts.length === 1) {
      if (method !== "POST") return error(405, "use POST");
      const body = await readJson(req);
      if (typeof body === "string") return error(400, body);
      const desired = body.desired;
      if (typeof desired !== "number" || !Number.isInteger(desired) || desired < 0) {
        return error(400, `desired: must be an integer >= 0, got ${JSON.stringify(desired)}`);
      }
      const scaled = actions.scale(desired);
      return scaled.ok ? json(200, { desired: scaled.desired, clamped: scaled.clamped }) : error(scaled.status, scaled.error);
    }
    if (resource === "reload" && parts.length === 1) {
      if (method !== "POST") return error(405, "use POST");
      const reloaded = await actions.reload();
      return reloaded.ok ? json(200, { reloaded: true, changes: reloaded.changes }) : error(400, "config invalid; nothing changed", { issues: reloaded.errors });
    }
    if (resource === "restart" && parts.length === 1) {
      if (method !== "POST") return error(405, "use POST");
      const restarted = actions.restart();
      return restarted.ok ? json(202, { restarting: restarted.instances }) : error(restarted.status, restarted.error);
    }
    return error(404, `no admin route ${method} ${route}`);
  };
}
