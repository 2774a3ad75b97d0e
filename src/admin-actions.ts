/**
 * What the admin API does to a running balancer (see http/admin.ts for the routes).
 * Admin changes last until the next reload or restart: the config file stays the truth.
 */
import type { Balancer } from "./balancer.ts";
import { parseBackendUrl } from "./config/backends.ts";
import type { AdminActions } from "./http/admin.ts";
import { backendStatus } from "./http/status.ts";
import type { Logger } from "./runtime/log.ts";

const DEFAULT_DRAIN_MS = 10_000;

export function createAdminActions(balancer: Balancer, log: Logger): AdminActions {
  const drainTime = () => balancer.config.instances?.stopTimeout ?? DEFAULT_DRAIN_MS;
  const noInstances = { ok: false as const, status: 409, error: "no managed instances: `instances` is not configured" };

  return {
    addBackend(url, weight) {
      const parsed = parseBackendUrl(url);
      if (typeof parsed === "string") return { ok: false, status: 400, error: `url: ${parsed}, got ${JSON.stringify(url)}` };
      if (balancer.pool.backends.some((b) => b.url === parsed.url)) return { ok: false, status: 409, error: `${parsed.url} is already a backend` };
      const member = balancer.pool.addStatic({ ...parsed, weight, maxConnections: 0 });
      log.info(`admin: added backend ${member.id} ${member.url}`);
      return { ok: true, backend: backendStatus(member) };
    },

    async removeBackend(id) {
      const member = balancer.pool.get(id);
      if (!member) return false;
      log.info(`admin: removing backend ${id} ${member.url} (draining first)`);
      if (member.managed) return (await balancer.supervisor?.remove(id)) ?? false;
      await balancer.pool.drain(member, drainTime());
      balancer.pool.remove(member);
      return true;
    },

    drainBackend(id) {
      const member = balancer.pool.get(id);
      if (!member) return false;
      balancer.pool.setState(member, "draining");
      log.info(`admin: draining backend ${id} ${member.url}`);
      return true;
    },

    scale(desired) {
      const { supervisor, autoscaler } = balancer;
      const instances = balancer.config.instances;
      if (!supervisor || !autoscaler || !instances) return noInstances;
      const clamped = Math.max(instances.min, Math.min(instances.max, desired));
      const from = supervisor.desired;
      if (clamped !== from) {
        autoscaler.record(clamped > from ? "up" : "down", from, clamped, "manual: POST /lb-admin/scale");
        supervisor.scaleTo(clamped);
      }
      return { ok: true, desired: clamped, clamped: clamped !== desired };
    },

    reload: () => balancer.reload(),

    restart() {
      const supervisor = balancer.supervisor;
      if (!supervisor) return noInstances;
      void supervisor.rollingRestart();
      return { ok: true, instances: supervisor.desired };
    },
  };
}
