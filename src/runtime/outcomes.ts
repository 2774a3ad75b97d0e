/**
 * Counters for `/lb-metrics`, kept as plain numbers where the request path
 * already is (a slot of an array bumped per response, no labels, no maps) and
 * turned into Prometheus families only when scraped. In a cluster each worker
 * sends its arrays to the primary, which adds them up (cluster/counters.ts).
 */

/** Per backend, by index: responses by status class, and what else happened to it. */
export const BACKEND_OUTCOMES = ["1xx", "2xx", "3xx", "4xx", "5xx", "timeout", "upstream_error", "ejections", "health_up", "health_down"] as const;
export type BackendOutcome = (typeof BACKEND_OUTCOMES)[number];
export const OUT_TIMEOUT = 5;
export const OUT_UPSTREAM_ERROR = 6;
export const OUT_EJECTIONS = 7;
export const OUT_HEALTH_UP = 8;
export const OUT_HEALTH_DOWN = 9;

export function newBackendOutcomes(): number[] {
  return new Array<number>(BACKEND_OUTCOMES.length).fill(0);
}

/** One more in `slot`. */
export function bump(outcomes: number[], slot: number): void {
  outcomes[slot] = (outcomes[slot] ?? 0) + 1;
}

/** The slot of a response status: 0 for 1xx ... 4 for 5xx. */
export function statusClass(status: number): number {
  const c = Math.floor(status / 100) - 1;
  return c < 0 ? 0 : c > 4 ? 4 : c;
}

/** Per process: what happened at the edge, not at a backend. */
export class EdgeStats {
  /** Requests refused before routing (malformed, too large, too slow, too many connections). */
  refused = 0;
  rateLimited = 0;
  /** Requests answered 503 because no backend was available. */
  noBackend = 0;
  /** Attempts sent again after a backend failed (or a kept-alive connection broke as it was reused). */
  retries = 0;
  /** Retries not made because the retry budget was spent. */
  retriesDenied = 0;
  /** Bytes read from and written to clients (the listen engine counts them; the serve engine cannot see them). */
  bytesIn = 0;
  bytesOut = 0;
  /** Open client connections (the listen engine counts them; null when the engine cannot). */
  connections: () => number | null = () => null;
  /** Open WebSockets (both engines keep it up to date). */
  openWebSockets = 0;
  /** Requests waiting for a backend slot (set by whoever owns the queue). */
  queued: () => number = () => 0;
}

/** The order of edgeCounts(). */
export const EDGE_COUNT_NAMES = ["refused", "rateLimited", "noBackend", "retries", "retriesDenied", "bytesIn", "bytesOut"] as const;

/** The counters as an array, for a worker's report to its primary. */
export function edgeCounts(stats: EdgeStats): number[] {
  return EDGE_COUNT_NAMES.map((name) => stats[name]);
}

/** `a + b`, slot by slot (for summing a cluster's reports). */
export function addCounts(a: readonly number[], b: readonly number[]): number[] {
  return a.map((value, i) => value + (b[i] ?? 0));
}
