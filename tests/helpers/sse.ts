/**
 * A Server-Sent Events client for tests: reads `/lb-events` with fetch and
 * hands out its events one by one, each wait bounded in time.
 */
export interface SseEvent {
  readonly event: string;
  readonly data: unknown;
}

export interface SseStream {
  /** The next event named `name` (others are skipped); rejects after `timeoutMs`. */
  next(name: string, timeoutMs?: number): Promise<SseEvent>;
  /** Resolves once the server ends the stream; rejects after `timeoutMs`. */
  ended(timeoutMs?: number): Promise<void>;
  close(): void;
}

export async function openEvents(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const abort = new AbortController();
  const res = await fetch(url, { headers, signal: abort.signal });
  if (res.status !== 200 || !res.headers.get("content-type")?.startsWith("text/event-stream")) {
    throw new Error(`${url}: HTTP ${res.status} ${res.headers.get("content-type")}`);
  }
  const queue: SseEvent[] = [];
  let wake: (() => void) | undefined;
  let done = false;
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of res.body as ReadableStream<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = Object.fromEntries(block.split("\n").map((line) => [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 1).trimStart()]));
          if (fields.event) queue.push({ event: fields.event, data: JSON.parse(fields.data ?? "null") });
        }
        wake?.();
      }
    } catch {
      // Aborted by close().
    }
    done = true;
    wake?.();
  })();

  const waitUntil = async <T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const value = check();
      if (value !== undefined) return value;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what} on ${url}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };

  return {
    next: (name, timeoutMs = 5000) =>
      waitUntil(
        () => {
          while (queue.length > 0) {
            const event = queue.shift() as SseEvent;
            if (event.event === name) return event;
          }
          if (done) throw new Error(`${url}: the stream ended before a "${name}" event`);
          return undefined;
        },
        timeoutMs,
        `a "${name}" event`,
      ),
    ended: (timeoutMs = 5000) => waitUntil(() => (done ? true : undefined), timeoutMs, "the end of the stream").then(() => undefined),
    close: () => abort.abort(),
  };
}
