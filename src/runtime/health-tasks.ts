/**
 * The scheduler's health work: probe every backend that takes traffic, fold
 * results into the pool, log transitions; end expired ejections; sample load.
 */
import type { ResolvedConfig } from "../config/schema.ts";
import type { Logger } from "./log.ts";
import type { Member, Pool } from "./pool.ts";
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
            const change = pool.recordProbe(member, result.ok);
            if (change || !member.probed) log.health(member.state === "healthy", member.url, result.detail);
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
      for (const member of pool.tick(Date.now())) log.info(`${member.url} is back in rotation after ejection`);
    },
  };
}

/**
 * Load is the time-averaged in-flight count (SPEC Definitions): sampled every
 * 100 ms, averaged over the last scaling window.
 */
export function loadSamplingTask(pool: Pool, windowMs: number): Task {
  const every = 100;
  const size = Math.max(1, Math.round(windowMs / every));
  const samples = new WeakMap<Member, number[]>();
  return {
    name: "load sampling",
    every,
    run: () => {
      for (const member of pool.backends) {
        let window = samples.get(member);
        if (!window) samples.set(member, (window = []));
        window.push(member.inflight);
        if (window.length > size) window.shift();
        member.load = window.reduce((a, b) => a + b, 0) / window.length;
      }
    },
  };
}
