/**
 * Upstream connections of the listen engine: raw HTTP/1.1 keep-alive sockets
 * over Bun.connect, pooled per backend (the most recently used idle one first),
 * carrying one exchange at a time. The exchange using a connection gets its
 * bytes, drains and close; the pool only keeps idle ones and closes those idle
 * longer than `idleMs` (below common backend keep-alive timeouts, so Fulcrum
 * is the side that closes).
 */
import type { Socket } from "bun";
import type { BackendView } from "../../types.ts";
import { Outbox, type OutboxOwner } from "./outbox.ts";

/** The exchange currently using a connection. */
export interface UpstreamUser {
  onUpstreamData(chunk: Buffer): void;
  onUpstreamDrained(): void;
  /** The connection closed or failed; `code` is an errno-like name (ECONNRESET, ...) for decide/retry.ts. */
  onUpstreamClosed(code: string): void;
}

export class UpstreamConnection implements OutboxOwner {
  socket: Socket<UpstreamConnection> | undefined;
  readonly out = new Outbox(this);
  user: UpstreamUser | undefined;
  /** Exchanges started on it (a failure on the first is never a stale keep-alive). */
  served = 0;
  lastUsed = performance.now();
  closed = false;
  readonly #pool: OriginPool;

  constructor(pool: OriginPool) {
    this.#pool = pool;
  }

  onOutboxDrained(): void {
    this.user?.onUpstreamDrained();
  }

  write(data: string | Uint8Array): boolean {
    return this.out.write(data);
  }

  writeAssembled(head: string, parts?: readonly Uint8Array[]): boolean {
    return this.out.writeAssembled(head, parts);
  }

  pause(): void {
    this.socket?.pause();
  }

  resume(): void {
    this.socket?.resume();
  }

  /** The exchange is over: back to the pool when it can carry another, else closed. */
  release(reusable: boolean): void {
    this.user = undefined;
    if (!reusable || this.closed) return this.destroy();
    this.socket?.resume();
    this.lastUsed = performance.now();
    this.#pool.idle.push(this);
  }

  destroy(): void {
    this.user = undefined;
    if (this.closed) return;
    this.closed = true;
    this.socket?.terminate();
    this.out.detach();
    this.#pool.forget(this);
  }

  onClosed(code: string): void {
    if (this.closed) return;
    this.closed = true;
    this.out.detach();
    this.#pool.forget(this);
    const user = this.user;
    this.user = undefined;
    user?.onUpstreamClosed(code);
  }
}

const handlers: Bun.SocketHandler<UpstreamConnection> = {
  data(socket, chunk) {
    const connection = socket.data;
    if (connection.user) connection.user.onUpstreamData(chunk);
    else connection.destroy(); // bytes nobody asked for: never reuse this connection
  },
  drain: (socket) => socket.data.out.onDrain(),
  close: (socket) => socket.data.onClosed("ECONNRESET"),
  end: (socket) => socket.data.onClosed("ECONNRESET"),
  error: (socket, error) => socket.data.onClosed((error as { code?: string }).code ?? "ECONNRESET"),
  connectError: (socket, error) => socket.data.onClosed((error as { code?: string }).code ?? "ECONNREFUSED"),
};

export class OriginPool {
  readonly idle: UpstreamConnection[] = [];
  readonly #hostname: string;
  readonly #port: number;
  readonly #tls: boolean;

  constructor(backend: BackendView) {
    const url = new URL(backend.url);
    this.#hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
    this.#port = backend.port;
    this.#tls = url.protocol === "https:";
  }

  /** The most recently used idle connection idle for less than `maxIdleMs`, or undefined. */
  take(maxIdleMs: number, now: number): UpstreamConnection | undefined {
    while (this.idle.length > 0) {
      const connection = this.idle.pop() as UpstreamConnection;
      if (!connection.closed && now - connection.lastUsed < maxIdleMs) return connection;
      connection.destroy();
    }
    return undefined;
  }

  /** Opens a new connection; rejects with an errno-like `code` (ECONNREFUSED, ETIMEDOUT, ...). */
  connect(timeoutMs: number): Promise<UpstreamConnection> {
    const connection = new UpstreamConnection(this);
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        connection.destroy();
        reject(Object.assign(new Error(`no connection within ${timeoutMs}ms`), { code: "ETIMEDOUT" }));
      }, timeoutMs);
      Bun.connect<UpstreamConnection>({ hostname: this.#hostname, port: this.#port, tls: this.#tls || undefined, data: connection, socket: handlers }).then(
        (socket) => {
          clearTimeout(timer);
          if (settled) return socket.terminate();
          settled = true;
          socket.setNoDelay(true);
          connection.socket = socket;
          connection.out.attach(socket as Socket<unknown>);
          resolve(connection);
        },
        (error: Error & { code?: string }) => {
          clearTimeout(timer);
          if (settled) return;
          settled = true;
          reject(Object.assign(error, { code: error.code ?? "ECONNREFUSED" }));
        },
      );
    });
  }

  forget(connection: UpstreamConnection): void {
    const i = this.idle.indexOf(connection);
    if (i >= 0) this.idle.splice(i, 1);
  }

  /** Closes connections idle for longer than `idleMs` (oldest are at the bottom of the stack). */
  sweep(now: number, idleMs: number): void {
    while (this.idle.length > 0 && now - (this.idle[0] as UpstreamConnection).lastUsed > idleMs) (this.idle[0] as UpstreamConnection).destroy();
  }

  close(): void {
    for (const connection of [...this.idle]) connection.destroy();
  }
}

/** One OriginPool per backend URL, and the timer that closes idle connections. */
export class Upstreams {
  readonly #pools = new Map<string, OriginPool>();
  readonly #timer: Timer;

  constructor(readonly idleMs: number) {
    this.#timer = setInterval(() => {
      const now = performance.now();
      for (const pool of this.#pools.values()) pool.sweep(now, idleMs);
    }, 1000);
    this.#timer.unref();
  }

  for(backend: BackendView): OriginPool {
    let pool = this.#pools.get(backend.url);
    if (!pool) this.#pools.set(backend.url, (pool = new OriginPool(backend)));
    return pool;
  }

  close(): void {
    clearInterval(this.#timer);
    for (const pool of this.#pools.values()) pool.close();
  }
}
