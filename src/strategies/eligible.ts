import type { BackendView, PickContext, Strategy } from "../types.ts";

/**
 * Calls `strategy.pick` once, as if exactly the backends for which `eligible`
 * is true were available. Positions are kept: a backend whose availability
 * differs is replaced by a copy with `available` overridden, never removed,
 * so a strategy with a cursor (round robin, least-load's tie-break) keeps its
 * turns. Filtering the array instead shifted them: one backend starved while
 * its neighbour got a double share. Copies are made only for the backends that
 * differ, so the common case (nothing overridden) allocates nothing.
 */
export function pickEligible<B extends BackendView>(
  strategy: Strategy,
  pool: readonly B[],
  ctx: PickContext,
  eligible: (backend: B) => boolean,
): B | undefined {
  let view: BackendView[] | undefined;
  for (let i = 0; i < pool.length; i++) {
    const backend = pool[i] as B;
    const available = eligible(backend);
    if (available === backend.available) continue;
    view ??= pool.slice();
    view[i] = { ...backend, available };
  }
  if (!view) return strategy.pick(pool, ctx) as B | undefined;
  const chosen = strategy.pick(view, ctx);
  if (chosen === undefined) return undefined;
  const index = view.indexOf(chosen);
  return index < 0 ? undefined : pool[index];
}
