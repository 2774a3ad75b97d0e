/**
 * The bundled example backend. Run it as `bun run examples/backend.ts --port 5001`
 * (or with PORT=5001); Fulcrum's shipped lb.config.ts manages copies of it.
 *
 *   GET  /            who answered: port and pid
 *   GET  /health      {"status":"ok"}
 *   GET  /work?ms=N   answers after N ms (for load tests; at most 60000)
 *   POST /echo        streams the request body back
 *
 * `--concurrency N` (or CONCURRENCY=N) makes it saturate like a real app with a
 * pool of N workers: at most N `/work` requests are served at once, later ones
 * wait in this process's own first-in-first-out queue, so under load latency
 * grows with the queue (6 requests of 100 ms with N = 2 take 100, 200, 300 ms).
 * `/work` then also reports `waitedMs`, its time in the queue. Unset or 0: no
 * limit (every `/work` just sleeps). `/health` never waits.
 */
function intArg(flag: string, envName: string, fallback: number, min: number, max: number): number {
  const i = Bun.argv.indexOf(flag);
  const value = i >= 0 ? Bun.argv[i + 1] : process.env[envName];
  const n = value === undefined || value === "" ? fallback : Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    console.error(`backend: invalid ${flag.slice(2)} ${JSON.stringify(value)}`);
    process.exit(1);
  }
  return n;
}

const port = intArg("--port", "PORT", 3000, 1, 65535);
const concurrency = intArg("--concurrency", "CONCURRENCY", 0, 0, 100_000);

// The worker pool: `busy` slots taken, the rest wait here in arrival order.
let busy = 0;
const queue: (() => void)[] = [];
async function inSlot<T>(work: () => Promise<T>): Promise<T> {
  if (concurrency === 0) return work();
  if (busy < concurrency) busy++;
  else await new Promise<void>((resolve) => queue.push(resolve));
  try {
    return await work();
  } finally {
    const next = queue.shift();
    if (next) next(); // hand the slot straight to the oldest waiter
    else busy--;
  }
}

const server = Bun.serve({
  port,
  async fetch(req) {
    const url = new URL(req.url);
    switch (url.pathname) {
      case "/health":
        return Response.json({ status: "ok" });
      case "/work": {
        const ms = Math.min(60_000, Math.max(0, Number(url.searchParams.get("ms")) || 0));
        const arrived = performance.now();
        return inSlot(async () => {
          const waitedMs = Math.round(performance.now() - arrived);
          await Bun.sleep(ms);
          return Response.json(concurrency ? { port, pid: process.pid, workedMs: ms, waitedMs } : { port, pid: process.pid, workedMs: ms });
        });
      }
      case "/echo":
        return new Response(req.body, { headers: { "content-type": req.headers.get("content-type") ?? "application/octet-stream" } });
      default:
        return new Response(`Hello from backend on port ${port} (pid ${process.pid})\n`);
    }
  },
});

console.log(`backend listening on port ${server.port}${concurrency ? ` (concurrency ${concurrency})` : ""}`);

// Finish what is in flight, then exit: what Fulcrum expects on SIGTERM.
process.on("SIGTERM", async () => {
  await server.stop();
  process.exit(0);
});
