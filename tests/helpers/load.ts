/**
 * A bounded load generator for e2e tests: `concurrency` clients each sending
 * requests back to back (or `pauseMs` apart) until `durationMs` has passed or `stop` aborts. Counts outcomes; a
 * failure is any non-2xx status or a network error.
 */
export interface LoadResult {
  ok: number;
  failed: number;
  /** What the failures were, for the assertion message. */
  failures: string[];
}

export async function runLoad(url: string, concurrency: number, durationMs: number, stop?: AbortSignal, pauseMs = 0): Promise<LoadResult> {
  const result: LoadResult = { ok: 0, failed: 0, failures: [] };
  const deadline = performance.now() + durationMs;
  const client = async () => {
    while (performance.now() < deadline && !stop?.aborted) {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(15_000) });
        await res.arrayBuffer();
        if (res.ok) result.ok++;
        else {
          result.failed++;
          if (result.failures.length < 10) result.failures.push(`HTTP ${res.status}`);
        }
      } catch (error) {
        result.failed++;
        if (result.failures.length < 10) result.failures.push(String(error));
      }
      if (pauseMs > 0) await Bun.sleep(pauseMs);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  return result;
}
