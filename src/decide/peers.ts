/**
 * What several Fulcrum nodes sharing one Redis agree on, decided without I/O:
 * how a shared backend is written down, how the registry maps onto this node's
 * static backends, and when peers' health reports take a backend out here.
 */

/** One static backend as the registry holds it (a Redis hash field per URL). */
export interface RegistryEntry {
  readonly url: string;
  readonly weight: number;
  readonly maxConnections: number;
  /** Drained through some node's `/lb-admin`: no new traffic on any node. */
  readonly drained: boolean;
}

export function encodeEntry(entry: RegistryEntry): string {
  return JSON.stringify({ weight: entry.weight, maxConnections: entry.maxConnections, drained: entry.drained });
}

/** A field written by another version or by hand may be odd: what cannot be read is skipped. */
export function decodeEntries(hash: Record<string, string>): RegistryEntry[] {
  const entries: RegistryEntry[] = [];
  for (const [url, text] of Object.entries(hash)) {
    try {
      const v = JSON.parse(text) as { weight?: unknown; maxConnections?: unknown; drained?: unknown };
      const weight = typeof v.weight === "number" && v.weight > 0 ? v.weight : 1;
      const maxConnections = typeof v.maxConnections === "number" && v.maxConnections >= 0 ? v.maxConnections : 0;
      entries.push({ url, weight, maxConnections, drained: v.drained === true });
    } catch {
      // skipped: not ours to repair
    }
  }
  return entries.sort((a, b) => a.url.localeCompare(b.url));
}

/** What this node's static backends must do to match the registry. */
export interface RegistryPlan {
  readonly add: readonly RegistryEntry[];
  readonly remove: readonly string[];
  readonly reweight: readonly { readonly url: string; readonly weight: number }[];
  readonly drain: readonly string[];
  /** Drained here by the registry before, no longer drained there (a reload reset it). */
  readonly undrain: readonly string[];
}

export interface LocalStatic {
  readonly url: string;
  readonly weight: number;
  /** Drained because the registry said so. */
  readonly drainedByRegistry: boolean;
  readonly draining: boolean;
}

export function planRegistry(local: readonly LocalStatic[], registry: readonly RegistryEntry[]): RegistryPlan {
  const here = new Map(local.map((b) => [b.url, b]));
  const wanted = new Set(registry.map((e) => e.url));
  return {
    add: registry.filter((e) => !here.has(e.url)),
    remove: local.filter((b) => !wanted.has(b.url)).map((b) => b.url),
    reweight: registry.filter((e) => here.has(e.url) && here.get(e.url)!.weight !== e.weight).map(({ url, weight }) => ({ url, weight })),
    drain: registry.filter((e) => e.drained && here.has(e.url) && !here.get(e.url)!.draining).map((e) => e.url),
    undrain: registry.filter((e) => !e.drained && here.get(e.url)?.drainedByRegistry === true).map((e) => e.url),
  };
}

/**
 * Peers' reports may take a backend out of rotation here: when a quorum (a
 * majority) of the peers with fresh reports say it is down. Reports expire
 * with their TTL, so a dead node's word stops counting. This node's own
 * probes still decide whether it is healthy; the peers only keep traffic off
 * a backend one of them already saw fail while this node's probes catch up.
 * With one peer, its word is enough: two nodes, one sees the failure, the
 * other stops sending at once.
 */
export function downByPeers(downVotes: number, peersReporting: number): boolean {
  return peersReporting > 0 && downVotes >= Math.floor(peersReporting / 2) + 1;
}
