/**
 * A WebSocket after the backend's real `101`: a byte tunnel between the client
 * and the upstream connection, no frame parsing (close codes pass because
 * bytes pass), backpressure both ways (a side whose writes queue pauses the
 * other's reads). It counts as a request in flight to its backend until either
 * side closes, then the other is closed too.
 */
import type { EdgeStats } from "../../runtime/outcomes.ts";
import type { Member, Pool } from "../../runtime/pool.ts";
import type { ClientConnection, RequestHandler } from "./client.ts";
import type { Exchange } from "./exchange.ts";
import type { UpstreamConnection, UpstreamUser } from "./upstream.ts";

export class Tunnel implements RequestHandler, UpstreamUser {
  readonly #client: ClientConnection;
  readonly #upstream: UpstreamConnection;
  readonly #backend: Member;
  readonly #stats: EdgeStats;
  readonly #pool: Pool;
  #open = true;

  private constructor(client: ClientConnection, upstream: UpstreamConnection, backend: Member, stats: EdgeStats, pool: Pool) {
    this.#pool = pool;
    this.#client = client;
    this.#upstream = upstream;
    this.#backend = backend;
    this.#stats = stats;
    stats.openWebSockets++;
  }

  /** Takes over the exchange's two connections; `first` holds the 101 head and any bytes after it. */
  static open(exchange: Exchange, first: Buffer): void {
    const upstream = exchange.upstream as UpstreamConnection;
    const backend = exchange.backend as Member;
    const tunnel = new Tunnel(exchange.client, upstream, backend, exchange.ctx.stats, exchange.ctx.pool);
    exchange.handOver();
    upstream.user = tunnel;
    exchange.client.attach(tunnel);
    exchange.client.clearDeadline();
    if (exchange.ctx.log.access) exchange.ctx.log.request("WEBSOCKET", exchange.head.path, backend.url);
    if (!exchange.client.write(first)) upstream.pause();
    exchange.client.resume();
  }

  onClientData(chunk: Uint8Array): undefined {
    if (this.#open && !this.#upstream.write(chunk)) this.#client.pause();
    return undefined;
  }

  onUpstreamData(chunk: Buffer): void {
    if (this.#open && !this.#client.write(chunk)) this.#upstream.pause();
  }

  onClientDrained(): void {
    this.#upstream.resume();
  }

  onUpstreamDrained(): void {
    this.#client.resume();
  }

  onClientClosed(): void {
    this.#close();
    this.#upstream.destroy();
  }

  onUpstreamClosed(): void {
    this.#close();
    this.#client.done(false);
  }

  onDeadline(): void {}

  #close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#pool.release(this.#backend);
    this.#stats.openWebSockets--;
  }
}
