/**
 * The serve engine's server: the design card's shape, one `Bun.serve` fetch
 * handler streaming every request through Bun's `fetch()` to a backend chosen
 * by the strategy,
 * and WebSockets relayed frame by frame. Kept small and simple as the
 * reference the listen engine is tested against.
 */
import type { Logger } from "../../runtime/log.ts";
import type { Traffic } from "../traffic.ts";
import { refuse } from "./refuse.ts";
import { pathOf } from "./request-checks.ts";
import { relayHandlers, type WsData } from "./websocket.ts";
import type { EdgeStats } from "../../runtime/outcomes.ts";
import type { OwnEndpoints } from "../listen/context.ts";

export interface Edge {
  readonly port: number;
  /** Stops accepting, lets requests in flight finish within `drainMs`, closes the rest; resolves with how many were cut. */
  stop(drainMs: number): Promise<number>;
}

export interface ServeOptions {
  readonly port: number;
  readonly hostname: string;
  readonly tls: { readonly cert: string; readonly key: string } | null;
  readonly reusePort: boolean;
  readonly idleTimeout: number;
  readonly maxBodySize: number;
  /** The current request path (a reload swaps it). */
  readonly traffic: () => Traffic;
  /** The balancer's own `/lb-*` endpoints, when they are served on this port. */
  readonly own: OwnEndpoints | undefined;
  readonly log: Logger;
  readonly stats: EdgeStats;
}

export function startServeEdge(options: ServeOptions): Edge {
  const { own, log } = options;
  const server: Bun.Server<WsData> = Bun.serve<WsData>({
    port: options.port,
    hostname: options.hostname,
    reusePort: options.reusePort,
    tls: options.tls ? { cert: Bun.file(options.tls.cert), key: Bun.file(options.tls.key) } : undefined,
    // Bun caps idleTimeout at 255 s (oven-sh/bun#15589); 0 would disable it.
    idleTimeout: Math.min(255, Math.max(1, Math.ceil(options.idleTimeout / 1000))),
    // Lift Bun's 128 MiB default: our own limit applies, Bun answers 413 above it.
    maxRequestBodySize: Math.max(1, options.maxBodySize),
    fetch: (req, srv) => {
      const refusal = refuse(req);
      if (refusal) {
        options.stats.refused++;
        return refusal;
      }
      const path = pathOf(req.url);
      if (own && path.startsWith("/lb-")) {
        const answer = own(req, path);
        if (answer) return answer;
      }
      const peerIp = srv.requestIP(req)?.address ?? "";
      const traffic = options.traffic();
      if (req.headers.get("upgrade")?.toLowerCase() === "websocket") return traffic.upgrade(req, srv, peerIp, path);
      return traffic.proxy(req, peerIp, path, srv);
    },
    websocket: relayHandlers,
    error: (error) => {
      log.error(`request failed: ${error.message}`);
      return new Response("500 Internal Server Error\n", { status: 500 });
    },
  });
  return {
    get port() {
      return server.port as number;
    },
    async stop(drainMs) {
      void server.stop(false);
      const deadline = performance.now() + drainMs;
      while ((server.pendingRequests > 0 || server.pendingWebSockets > 0) && performance.now() < deadline) await Bun.sleep(25);
      const cut = server.pendingRequests + server.pendingWebSockets;
      await server.stop(true);
      return cut;
    },
  };
}
