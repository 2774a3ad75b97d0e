/**
 * The scheduler's health work: probe every backend that takes traffic, fold
 * results into the pool, log transitions; end expired ejections.
 */
import type { ResolvedConfig } from "../config/schema.ts";
import type { Logger } from "./log.ts";
import type { Pool } from "./pool.ts";
import { probe } from "./prober.ts";
import type { Task } from "./scheduler.ts";

export function probeTask(pool: Pool, health: ResolvedConfig["health"], log: Logger): Task {
  return {
    name: "health probe",
    every: health.interval,
    immediate: true,
    run: (signal) =>
      Promise.all(
        pool.backends
          .filter((m) => m.state === "healthy" || m.state === "unhealthy")
          .map(async (member) => {
            const result = await probe(member.url, health.path, health.timeout, signal);
            if (signal.aborted || !pool.backends.includes(member)) return;
            const { change, unejected } = pool.recordProbe(member, result.ok);
            if (change || !member.probed) log.health(member.state === "healthy", member.url, result.detail);
            else if (unejected) log.info(`${member.url} is half-open: its health probe passed (${result.detail}), trying a few requests`);
            member.probed = true;
          }),
      ),
  };
}

export function ejectionTask(pool: Pool, log: Logger): Task {
  return {
    name: "ejection expiry",
    every: 250,
    run: () => {
      for (const member of pool.tick(Date.now())) log.info(`${member.url} is half-open after ejection: trying a few requests`);
    },
  };
}
