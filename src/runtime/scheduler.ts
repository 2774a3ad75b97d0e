/**
 * The one loop that runs periodic work (health probes, ejection expiry, load
 * sampling, scaling): each task runs every `every` ms, never overlapping
 * itself, and an error in one run is logged and forgotten. Stops on the signal.
 */
import type { Logger } from "./log.ts";

export interface Task {
  readonly name: string;
  readonly every: number;
  /** Run once at start instead of waiting `every` first. */
  readonly immediate?: boolean;
  run(signal: AbortSignal): unknown;
}

export function runScheduler(tasks: readonly Task[], log: Logger, signal: AbortSignal): void {
  const now = performance.now();
  const state = tasks.map((task) => ({ task, due: task.immediate ? now : now + task.every, running: false }));
  let timer: Timer | undefined;

  const tick = () => {
    if (signal.aborted) return;
    const t = performance.now();
    for (const entry of state) {
      if (entry.running || t < entry.due) continue;
      entry.due = t + entry.task.every;
      entry.running = true;
      Promise.resolve()
        .then(() => entry.task.run(signal))
        .catch((error) => log.error(`${entry.task.name} failed: ${error instanceof Error ? error.message : String(error)}`))
        .finally(() => {
          entry.running = false;
        });
    }
    const next = Math.min(...state.map((e) => e.due));
    timer = setTimeout(tick, Math.max(5, next - performance.now()));
  };

  signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
  tick();
}
