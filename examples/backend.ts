/**
 * The bundled example backend. Run it as `bun run examples/backend.ts --port 5001`
 * (or with PORT=5001); Fulcrum's shipped lb.config.ts manages copies of it.
 *
 *   GET  /            who answered: port and pid
 *   GET  /health      {"status":"ok"}
 *   GET  /work?ms=N   answers after N ms (for load tests; at most 60000)
 *   POST /echo        streams the request body back
 */
function portFromArgs(): number {
  const i = Bun.argv.indexOf("--port");
  const value = i >= 0 ? Bun.argv[i + 1] : process.env.PORT;
  const port = Number(value ?? 3000);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error(`backend: invalid port ${JSON.stringify(value)}`);
    process.exit(1);
  }
  return port;
}

const port = portFromArgs();

const server = Bun.serve({
  port,
  async fetch(req) {
    const url = new URL(req.url);
    switch (url.pathname) {
      case "/health":
        return Response.json({ status: "ok" });
      case "/work": {
        const ms = Math.min(60_000, Math.max(0, Number(url.searchParams.get("ms")) || 0));
        await Bun.sleep(ms);
        return Response.json({ port, pid: process.pid, workedMs: ms });
      }
      case "/echo":
        return new Response(req.body, { headers: { "content-type": req.headers.get("content-type") ?? "application/octet-stream" } });
      default:
        return new Response(`Hello from backend on port ${port} (pid ${process.pid})\n`);
    }
  },
});

console.log(`backend listening on port ${server.port}`);

// Finish what is in flight, then exit: what Fulcrum expects on SIGTERM.
process.on("SIGTERM", async () => {
  await server.stop();
  process.exit(0);
});
