/**
 * What the admin API does to a running balancer (see http/admin.ts for the
 * routes), through the narrow AdminTarget rather than the whole balancer.
 * Admin changes last until the next reload or restart: the config file stays
 * the truth. With shared state (cluster.redis) a change to the static backends
 * is written to the registry and every node, this one included, applies it
 * from there; while Redis is away such changes are refused with 503.
 */
import { parseBackendUrl } from "./config/backends.ts";
import type { RegistryEntry } from "./decide/peers.ts";
import type { AdminActions, Refusal } from "./http/admin.ts";
import { backendStatus } from "./http/status.ts";
import type { Logger } from "./runtime/log.ts";
import type { Autoscaler } from "./runtime/autoscaler.ts";
import type { Pool } from "./runtime/pool.ts";
import type { Supervisor } from "./runtime/supervisor.ts";
import { type SharedState, SharedStateUnavailable } from "./shared-state/shared-state.ts";

/** Managed instances, as admin sees them. */
export interface InstanceControl {
  /** Sets the count within min..max (the autoscaler owns that clamp). */
  scale(desired: number, reason: string): { desired: number; clamped: boolean };
  /** Drains and stops one instance; false when there is none with that id. */
  remove(id: string): Promise<boolean>;
  /** Starts a rolling restart; returns how many instances it covers. */
  rollingRestart(): number;
}

export interface AdminTarget {
  readonly pool: Pool;
  readonly instances: () => InstanceControl | undefined;
  readonly shared: SharedState | undefined;
  /** How long a removed backend may drain. */
  readonly drainMs: () => number;
  reload(): Promise<{ ok: true; changes: string[] } | { ok: false; errors: string[] }>;
}

/** Admin's view of the supervisor and the autoscaler. */
export function instanceControl(supervisor: Supervisor, autoscaler: Autoscaler): InstanceControl {
  return {
    scale: (desired, reason) => autoscaler.manualScale(desired, reason),
    remove: (id) => supervisor.remove(id),
    rollingRestart: () => {
      void supervisor.rollingRestart();
      return supervisor.desired;
    },
  };
}

const NO_INSTANCES: Refusal = { ok: false, status: 409, error: "no managed instances: `instances` is not configured" };

export function createAdminActions(target: AdminTarget, log: Logger): AdminActions {
  const { pool } = target;
  /** A registry change, or the refusal to answer when Redis is away. */
  const viaRegistry = async (update: (entries: RegistryEntry[]) => RegistryEntry[]): Promise<Refusal | undefined> => {
    try {
      await target.shared!.change(update);
      return undefined;
    } catch (error) {
      if (error instanceof SharedStateUnavailable) return { ok: false, status: 503, error: error.message };
      throw error;
    }
  };

  return {
    async addBackend(url, weight) {
      const parsed = parseBackendUrl(url);
      if (typeof parsed === "string") return { ok: false, status: 400, error: `url: ${parsed}, got ${JSON.stringify(url)}` };
      if (pool.backends.some((b) => b.url === parsed.url)) return { ok: false, status: 409, error: `${parsed.url} is already a backend` };
      if (target.shared) {
        const refused = await viaRegistry((entries) => [...entries.filter((e) => e.url !== parsed.url), { url: parsed.url, weight, maxConnections: 0, drained: false }]);
        if (refused) return refused;
        const member = pool.backends.find((b) => b.url === parsed.url && !b.managed);
        log.info(`admin: added backend ${parsed.url} to the shared registry`);
        return member ? { ok: true, backend: backendStatus(member) } : { ok: false, status: 503, error: "added to the shared registry, not applied here yet" };
      }
      const member = pool.addStatic({ ...parsed, weight, maxConnections: 0 });
      log.info(`admin: added backend ${member.id} ${member.url}`);
      return { ok: true, backend: backendStatus(member) };
    },

    async removeBackend(id) {
      const member = pool.get(id);
      if (!member) return false;
      log.info(`admin: removing backend ${id} ${member.url} (draining first)`);
      if (member.managed) return (await target.instances()?.remove(id)) ?? false;
      if (target.shared) return (await viaRegistry((entries) => entries.filter((e) => e.url !== member.url))) ?? true;
      await pool.drain(member, target.drainMs());
      pool.remove(member);
      return true;
    },

    async drainBackend(id) {
      const member = pool.get(id);
      if (!member) return false;
      log.info(`admin: draining backend ${id} ${member.url}`);
      if (target.shared && !member.managed) return (await viaRegistry((entries) => entries.map((e) => (e.url === member.url ? { ...e, drained: true } : e)))) ?? true;
      pool.setState(member, "draining");
      return true;
    },

    scale(desired) {
      const instances = target.instances();
      if (!instances) return NO_INSTANCES;
      return { ok: true, ...instances.scale(desired, "manual: POST /lb-admin/scale") };
    },

    reload: () => target.reload(),

    restart() {
      const instances = target.instances();
      if (!instances) return NO_INSTANCES;
      return { ok: true, instances: instances.rollingRestart() };
    },
  };
}
