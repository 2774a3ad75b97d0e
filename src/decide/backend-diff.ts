/**
 * What a config reload changes in the static backends, matched by URL. Pure.
 */
export interface StaticBackend {
  readonly url: string;
  readonly weight: number;
}

export interface BackendDiff<T extends StaticBackend> {
  readonly added: readonly T[];
  readonly removed: readonly string[];
  readonly reweighted: readonly StaticBackend[];
}

export function diffBackends<T extends StaticBackend>(current: readonly StaticBackend[], next: readonly T[]): BackendDiff<T> {
  const now = new Map(current.map((b) => [b.url, b.weight]));
  const wanted = new Set(next.map((b) => b.url));
  return {
    added: next.filter((b) => !now.has(b.url)),
    removed: current.filter((b) => !wanted.has(b.url)).map((b) => b.url),
    reweighted: next.filter((b) => now.has(b.url) && now.get(b.url) !== b.weight).map(({ url, weight }) => ({ url, weight })),
  };
}
