/**
 * The listen engine's server: Fulcrum's own HTTP/1.1 edge on `Bun.listen`
 * (plain TCP or TLS). No Request, Headers, AbortSignal or Response per proxied
 * request: connection state lives in `socket.data` (client.ts), heads are
 * parsed and forwarded as bytes (http1/), bodies stream socket to socket.
 *
 * Here: accepting (with `proxy.maxConnections`), the one timer that checks
 * every connection's deadline, what happens to a parsed request before it goes
 * to a backend (the balancer's own `/lb-*` endpoints, WebSocket handshake
 * checks, the rate limit, `proxy.maxBodySize`), and shutting down with a drain.
 */
import type { Socket, TCPSocketListener } from "bun";
import { rateLimitKey, retryAfterSeconds, type RateLimitVerdict } from "../../decide/rate-limit.ts";
import { fieldValue, type RequestHead } from "../http1/request-head.ts";
import { ClientConnection, type EdgeHooks } from "./client.ts";
import type { EdgeStats } from "../../runtime/outcomes.ts";
import type { ListenContext } from "./context.ts";
import { Exchange } from "./exchange.ts";
import { serveOwn } from "./own-endpoints.ts";

export interface ListenOptions {
  readonly port: number;
  readonly hostname: string;
  readonly tls: { readonly cert: string; readonly key: string } | null;
  /** Several processes share the port (cluster workers). */
  readonly reusePort: boolean;
  /** The current request path (a reload swaps it; requests in flight keep theirs). */
  readonly context: () => ListenContext;
  readonly stats: EdgeStats;
}

const SWEEP_MS = 100;

export class ListenEdge {
  readonly #listener: TCPSocketListener<ClientConnection>;
  readonly #connections = new Set<ClientConnection>();
  readonly #sweeper: Timer;
  readonly #options: ListenOptions;
  #draining = false;

  constructor(options: ListenOptions) {
    this.#options = options;
    const connections = this.#connections;
    options.stats.connections = () => connections.size;
    const hooks: EdgeHooks = {
      handle: (client, head, rest) => this.#handle(client, head, rest),
      context: options.context,
      stats: options.stats,
      draining: () => this.#draining,
      closed: (client) => connections.delete(client),
    };
    const listenOptions: Bun.TCPSocketListenOptions<ClientConnection> & { reusePort: boolean } = {
      hostname: options.hostname,
      port: options.port,
      // Cluster workers share the port (SO_REUSEPORT; Bun honours it though its types do not list it).
      reusePort: options.reusePort,
      // A client that half-closes after its request still gets its answer; Fulcrum closes when it is done.
      allowHalfOpen: true,
      tls: options.tls ? { cert: Bun.file(options.tls.cert), key: Bun.file(options.tls.key) } : undefined,
      socket: {
        open(socket: Socket<ClientConnection>) {
          socket.setNoDelay(true);
          const client = new ClientConnection(socket, hooks);
          socket.data = client;
          connections.add(client);
          if (connections.size > options.context().proxy.maxConnections) client.fail({ kind: "too-many-connections" });
        },
        data: (socket, chunk) => socket.data.onData(chunk),
        drain: (socket) => socket.data.out.onDrain(),
        end: (socket) => socket.data.onEnd(),
        close: (socket) => socket.data?.onClosed(),
        error: (socket) => socket.data?.onClosed(),
      },
    };
    this.#listener = Bun.listen<ClientConnection>(listenOptions);
    this.#sweeper = setInterval(() => {
      const now = performance.now();
      for (const client of connections) if (client.deadline !== 0 && now >= client.deadline) client.onDeadline();
    }, SWEEP_MS);
  }

  get port(): number {
    return this.#listener.port;
  }

  /** Connections with a request being answered. */
  get busy(): number {
    let n = 0;
    for (const client of this.#connections) if (client.busy) n++;
    return n;
  }

  get connections(): number {
    return this.#connections.size;
  }

  #handle(client: ClientConnection, head: RequestHead, rest: Uint8Array | undefined): void {
    const ctx = this.#options.context();
    if (ctx.own && head.path.startsWith("/lb-") && serveOwn(client, ctx, head, rest)) return;
    if (head.websocket) {
      const problem = handshakeProblem(head);
      if (problem) return client.fail(problem, head.keepAlive);
    }
    if (head.contentLength > ctx.proxy.maxBodySize) return client.fail({ kind: "too-large", limit: ctx.proxy.maxBodySize });
    const limit = ctx.rateLimit;
    if (!limit) return new Exchange(client, ctx, head, rest).start();
    const clientIp = ctx.clientIp(client.peerIp, head.forwardedFor);
    const verdict = limit.check(rateLimitKey(limit.key, clientIp, (name) => fieldValue(head, name)));
    const go = (v: RateLimitVerdict) => {
      if (v.allowed) return new Exchange(client, ctx, head, rest).start();
      client.fail({ kind: "rate-limited", retryAfterSeconds: retryAfterSeconds(v.retryAfterMs) }, head.keepAlive && head.contentLength <= 0 && !head.chunked, {
        method: head.method,
        path: head.path,
        ms: 0,
        facts: { requestId: head.requestId, client: clientIp, bytesIn: head.text.length + 4, bytesOut: null },
      });
    };
    if (!(verdict instanceof Promise)) return go(verdict);
    client.pause();
    void verdict.then(go);
  }

  /**
   * Graceful: stop accepting, close idle keep-alive connections, let requests
   * in flight finish within `drainMs`, then cut what is left. Resolves with how
   * many requests were cut.
   */
  async stop(drainMs: number): Promise<number> {
    this.#draining = true;
    this.#listener.stop(false);
    for (const client of this.#connections) client.drain();
    const deadline = performance.now() + drainMs;
    while (this.busy > 0 && performance.now() < deadline) await Bun.sleep(25);
    const cut = this.busy;
    for (const client of this.#connections) client.socket.terminate();
    clearInterval(this.#sweeper);
    this.#listener.stop(true);
    return cut;
  }
}

/** RFC 6455 §4.2.1: a GET over HTTP/1.1 with a 16-byte base64 key and version 13 (else 426 naming it). */
function handshakeProblem(head: RequestHead) {
  if (head.method !== "GET") return { kind: "bad-handshake", status: 400, reason: "a WebSocket handshake must be a GET" } as const;
  const key = fieldValue(head, "sec-websocket-key");
  if (key === null || !/^[A-Za-z0-9+/]{22}==$/.test(key)) return { kind: "bad-handshake", status: 400, reason: "missing or invalid Sec-WebSocket-Key" } as const;
  if (fieldValue(head, "sec-websocket-version") !== "13") return { kind: "bad-handshake", status: 426, reason: "unsupported Sec-WebSocket-Version (13 is)" } as const;
  return undefined;
}
