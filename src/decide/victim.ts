/**
 * Which instance to stop when scaling down, as Kubernetes' ReplicaSet picks
 * pods to delete: one that is not serving first (starting, restarting,
 * failed), then the least busy, then the newest. Pure.
 */
export interface Candidate {
  readonly ready: boolean;
  readonly inflight: number;
  /** When it became ready (any monotonic clock); null if never. */
  readonly readySince: number | null;
}

export function chooseVictim<T extends Candidate>(candidates: readonly T[]): T | undefined {
  return [...candidates].sort(
    (a, b) => Number(a.ready) - Number(b.ready) || a.inflight - b.inflight || (b.readySince ?? 0) - (a.readySince ?? 0),
  )[0];
}
