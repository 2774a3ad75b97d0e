/**
 * WebSocket proxying. The upstream connection is opened first, so a backend
 * that refuses gives the client a 502 instead of an accepted-then-closed
 * socket, and the subprotocol the backend chose is the one the client is told.
 * Then the client's request is upgraded (Bun can only upgrade the original
 * Request, oven-sh/bun#11382) and frames are relayed both ways, text as text,
 * binary as binary, close codes and reasons kept.
 */
import type { ServerWebSocket } from "bun";
import { forwardRequestHeaders, upstreamHost } from "../../decide/headers.ts";
import type { EdgeStats } from "../../runtime/outcomes.ts";
import { failureAsResponse } from "../failures.ts";
import { selectBackend } from "../select.ts";
import type { PickContext, Strategy } from "../../types.ts";
import type { Logger } from "../../runtime/log.ts";
import type { Member, Pool } from "../../runtime/pool.ts";

export interface WsData {
  readonly upstream: WebSocket;
  readonly backend: Member;
  readonly stats: EdgeStats;
  readonly pool: Pool;
  /** Frames from upstream that arrived before the client side opened. */
  readonly early: (string | ArrayBuffer)[];
  client: ServerWebSocket<WsData> | undefined;
  /** Set when upstream closed before the client side opened. */
  upstreamClose: { code: number; reason: string } | undefined;
}

export interface WebSocketDeps {
  readonly pool: Pool;
  readonly strategy: Strategy;
  readonly connectTimeout: number;
  /** Seconds for `Retry-After` on a 503. */
  readonly retryAfterSeconds: number;
  readonly preserveHost: boolean;
  readonly tls: boolean;
  readonly log: Logger;
  readonly isTrusted: (ip: string) => boolean;
  readonly trustProxy: boolean;
  readonly clientIp: (peerIp: string, req: Request) => string;
  /** Called when no backend is available; resolves true once one is (scale from zero). */
  readonly coldStart?: () => Promise<boolean>;
  readonly stats: EdgeStats;
}

/** Headers of the handshake that belong to this hop's handshake, not the upstream one. */
const HANDSHAKE_HEADERS = ["sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol"];

export function isWebSocketUpgrade(req: Request): boolean {
  return req.headers.get("upgrade")?.toLowerCase() === "websocket";
}

/** Relays a close from one side to the other: 1005 (no code) and 1006 (abnormal) cannot be sent as codes. */
function relayClose(target: { close(code?: number, reason?: string): void; terminate?: () => void }, code: number, reason: string): void {
  if (code === 1006 && target.terminate) target.terminate();
  else if (code === 1005 || code === 1006) target.close();
  else target.close(code, reason);
}

export function createWebSocketUpgrade(deps: WebSocketDeps) {
  const { pool, strategy, log } = deps;

  async function upgrade(req: Request, server: Bun.Server<WsData>, peerIp: string, path: string): Promise<Response | undefined> {
    const ctx: PickContext = { clientIp: deps.clientIp(peerIp, req), header: (name) => req.headers.get(name) };
    let backend = selectBackend(strategy, pool.backends, ctx, undefined, false, pool.panic);
    if (!backend && deps.coldStart && (await deps.coldStart())) backend = selectBackend(strategy, pool.backends, ctx, undefined, false, pool.panic);
    if (!backend) return failureAsResponse({ kind: "no-backend", retryAfterSeconds: deps.retryAfterSeconds }, deps.stats);

    const target = backend.url.replace(/^http/, "ws") + path;
    // A copy: the upgrade below still needs the client's own handshake headers.
    const headers = forwardRequestHeaders(new Headers(req.headers), {
      peerIp,
      peerTrusted: deps.trustProxy && deps.isTrusted(peerIp),
      proto: deps.tls ? "https" : "http",
      newRequestId: () => crypto.randomUUID(),
    });
    headers.set("host", upstreamHost(req.headers.get("host"), deps.preserveHost, backend.host));
    for (const name of HANDSHAKE_HEADERS) headers.delete(name);
    const protocols = req.headers
      .get("sec-websocket-protocol")
      ?.split(",")
      .map((p) => p.trim())
      .filter(Boolean);

    const upstream = new WebSocket(target, { headers, protocols } as unknown as string[]);
    upstream.binaryType = "arraybuffer";
    const data: WsData = { upstream, backend, stats: deps.stats, pool, early: [], client: undefined, upstreamClose: undefined };
    upstream.addEventListener("message", (event) => {
      const frame = event.data as string | ArrayBuffer;
      if (data.client) data.client.send(frame);
      else data.early.push(frame);
    });
    upstream.addEventListener("close", (event) => {
      if (data.client) relayClose(data.client, event.code, event.reason);
      else data.upstreamClose = { code: event.code, reason: event.reason };
    });

    const opened = await waitOpen(upstream, deps.connectTimeout);
    if (opened !== true) {
      upstream.close();
      pool.countFailedUpgrade(backend);
      log.warn(`WebSocket to ${backend.url} failed: ${opened}`);
      return failureAsResponse({ kind: "bad-response", backend: backend.url, reason: opened });
    }
    const chosen = upstream.protocol;
    const upgraded = server.upgrade(req, { data, headers: chosen ? { "sec-websocket-protocol": chosen } : undefined });
    if (!upgraded) {
      upstream.close();
      return failureAsResponse({ kind: "bad-handshake", status: 400, reason: "invalid WebSocket handshake" }, deps.stats);
    }
    pool.begin(backend);
    if (log.access) log.request("WEBSOCKET", path, backend.url);
    return undefined;
  }

  return upgrade;
}

/** Relays frames and closes between the two sockets of an upgraded connection; config-free. */
export const relayHandlers: Bun.WebSocketHandler<WsData> = {
  open(ws) {
    const data = ws.data;
    data.stats.openWebSockets++;
    data.client = ws;
    for (const frame of data.early) ws.send(frame);
    data.early.length = 0;
    if (data.upstreamClose) relayClose(ws, data.upstreamClose.code, data.upstreamClose.reason);
  },
  message(ws, message) {
    const upstream = ws.data.upstream;
    if (upstream.readyState === WebSocket.OPEN) upstream.send(message);
  },
  close(ws, code, reason) {
    const { upstream, backend, stats, pool } = ws.data;
    pool.release(backend);
    stats.openWebSockets--;
    if (upstream.readyState === WebSocket.OPEN || upstream.readyState === WebSocket.CONNECTING) relayClose(upstream, code, reason);
  },
};

/** Resolves `true` once open, or a reason it did not open within `timeoutMs`. */
function waitOpen(socket: WebSocket, timeoutMs: number): Promise<true | string> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(`no WebSocket handshake within ${timeoutMs}ms`), timeoutMs);
    const done = (result: true | string) => {
      clearTimeout(timer);
      resolve(result);
    };
    socket.addEventListener("open", () => done(true), { once: true });
    socket.addEventListener("error", () => done("handshake failed"), { once: true });
    socket.addEventListener("close", (e) => done(`closed during handshake (${e.code})`), { once: true });
  });
}
