import type { KeySource } from "../config/schema.ts";
import type { BackendView, PickContext, Strategy } from "../types.ts";

/**
 * Sticky routing by client IP or a header, with weighted rendezvous hashing
 * (Thaler & Ravishankar 1998; the weighted score -w/ln(u) is from Resch's
 * "New hashing algorithms for data sources"). Every backend gets a score for the
 * key and the highest wins, so when a backend leaves, only the keys it owned
 * move, and they spread evenly over the rest. Backends are identified by URL,
 * so every worker process maps a key to the same backend.
 */
export class Hash implements Strategy {
  readonly name = "hash";
  readonly #header: string | undefined;
  readonly #urlHashes = new Map<string, number>();

  constructor(key: KeySource = "ip") {
    this.#header = key.startsWith("header:") ? key.slice("header:".length).toLowerCase() : undefined;
  }

  pick(pool: readonly BackendView[], ctx: PickContext): BackendView | undefined {
    const key = (this.#header && ctx.header(this.#header)) || ctx.clientIp;
    const keyHash = Bun.hash.murmur32v3(key);
    let best: BackendView | undefined;
    let bestScore = -Infinity;
    for (const backend of pool) {
      if (!backend.available || backend.weight <= 0) continue;
      const u = (mix(keyHash, this.#hashOf(backend.url)) + 0.5) / 4294967296; // (0, 1)
      const score = -backend.weight / Math.log(u);
      if (score > bestScore) {
        best = backend;
        bestScore = score;
      }
    }
    return best;
  }

  #hashOf(url: string): number {
    let h = this.#urlHashes.get(url);
    if (h === undefined) {
      h = Bun.hash.murmur32v3(url);
      if (this.#urlHashes.size > 4096) this.#urlHashes.clear();
      this.#urlHashes.set(url, h);
    }
    return h;
  }
}

/** murmur3's fmix32 over the two hashes: an unsigned 32-bit value, well spread. */
function mix(a: number, b: number): number {
  let h = (a ^ Math.imul(b, 0x9e3779b1)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
