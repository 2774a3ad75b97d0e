/**
 * The listen engine's connection and exchange logic against fake sockets (no
 * network): what goes upstream and when, backpressure in both directions,
 * pipelined requests kept in order, the upstream connection's return to its
 * pool, and the retry when a kept-alive connection turns out closed. The same
 * behaviour is tested end to end in tests/e2e/listen-engine.test.ts; here each
 * step can be observed and the sockets can refuse to take bytes.
 */
import { describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import type { ResolvedConfig } from "../../src/config/schema.ts";
import { validateConfig } from "../../src/config/validate.ts";
import { ClientConnection, type EdgeHooks } from "../../src/proxy/listen/client.ts";
import type { ListenContext } from "../../src/proxy/listen/context.ts";
import { Exchange } from "../../src/proxy/listen/exchange.ts";
import { OriginPool, UpstreamConnection, type Upstreams } from "../../src/proxy/listen/upstream.ts";
import { SlotQueue } from "../../src/proxy/queue.ts";
import { RetryBudget } from "../../src/proxy/retry-budget.ts";
import { Logger } from "../../src/runtime/log.ts";
import { EdgeStats } from "../../src/runtime/outcomes.ts";
import { Pool } from "../../src/runtime/pool.ts";
import { RoundRobin } from "../../src/strategies/round-robin.ts";

/** A socket that records what is written and takes at most `accept` bytes per write. */
class FakeSocket {
  written = "";
  accept = Infinity;
  paused = false;
  ended = false;
  data: unknown;
  readonly remoteAddress = "10.0.0.9";
  write(data: string | Uint8Array, offset = 0, length?: number): number {
    const bytes = typeof data === "string" ? Buffer.from(data, "latin1") : Buffer.from(data.buffer, data.byteOffset + offset, length ?? data.byteLength - offset);
    const n = Math.min(this.accept, bytes.byteLength);
    this.written += bytes.subarray(0, n).toString("latin1");
    return n;
  }
  pause() {
    this.paused = true;
  }
  resume() {
    this.paused = false;
  }
  end() {
    this.ended = true;
  }
  shutdown() {
    this.ended = true;
  }
  terminate() {
    this.ended = true;
  }
  setNoDelay() {}
}

const bytes = (s: string) => Buffer.from(s, "latin1");

function setup() {
  const config = validateConfig({ backends: ["http://127.0.0.1:9"], log: { access: false } }, { baseDir: "/", bunPath: "bun" });
  const pool = new Pool(config.health);
  pool.addStatic(config.backends[0] as ResolvedConfig["backends"][number]);
  const origin = new OriginPool(pool.backends[0] as never);
  const connects: FakeSocket[] = [];
  let connectFails = false;
  /** A pooled upstream connection on a fake socket. */
  const upstreamOn = (socket: FakeSocket) => {
    const connection = new UpstreamConnection(origin);
    connection.socket = socket as unknown as Socket<UpstreamConnection>;
    connection.out.attach(socket as unknown as Socket<unknown>);
    socket.data = connection;
    return connection;
  };
  const idle = new FakeSocket();
  origin.idle.push(upstreamOn(idle));
  origin.connect = async () => {
    if (connectFails) throw Object.assign(new Error("refused"), { code: "ECONNREFUSED" });
    const socket = new FakeSocket();
    connects.push(socket);
    return upstreamOn(socket);
  };
  const upstreams = { idleMs: 4000, for: () => origin, close() {} } as unknown as Upstreams;
  const stats = new EdgeStats();
  const ctx: ListenContext = {
    pool,
    strategy: new RoundRobin(),
    proxy: config.proxy,
    log: new Logger(config.log, { write() {}, flush() {} }),
    tls: false,
    retryAfterSeconds: 5,
    isTrusted: () => false,
    clientIp: (peer) => peer,
    coldStart: undefined,
    rateLimit: undefined,
    own: undefined,
    upstreams,
    newRequestId: () => "rid",
    stats,
    queue: new SlotQueue(config.proxy.queue),
    retryBudget: new RetryBudget(config.proxy.queue),
  };
  const hooks: EdgeHooks = {
    handle: (client, head, rest) => new Exchange(client, ctx, head, rest).start(),
    context: () => ctx,
    stats,
    draining: () => false,
    closed() {},
  };
  const clientSocket = new FakeSocket();
  const client = new ClientConnection(clientSocket as unknown as Socket<ClientConnection>, hooks);
  return { pool, origin, client, clientSocket, idle, connects, setConnectFails: (v: boolean) => (connectFails = v) };
}

describe("listen exchange against fake sockets", () => {
  test("a request in three pieces goes upstream as one head (plus body) write; the response comes back; the connection returns to the pool", () => {
    const { client, clientSocket, idle, origin } = setup();
    client.onData(bytes("POST /up HTTP/1.1\r\nHo"));
    expect(idle.written).toBe("");
    client.onData(bytes("st: x\r\nContent-Length: 5\r\n\r\nhel"));
    expect(idle.written).toStartWith("POST /up HTTP/1.1\r\nHost: x\r\n");
    expect(idle.written).toEndWith("content-length: 5\r\n\r\nhel");
    client.onData(bytes("lo"));
    expect(idle.written).toEndWith("\r\n\r\nhello");
    expect(origin.idle).toHaveLength(0); // in use
    (idle.data as UpstreamConnection).user?.onUpstreamData(bytes("HTTP/1.1 200 OK\r\nContent-Le"));
    expect(clientSocket.written).toBe("");
    (idle.data as UpstreamConnection).user?.onUpstreamData(bytes("ngth: 2\r\n\r\nok"));
    expect(clientSocket.written).toBe("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    expect(origin.idle).toHaveLength(1); // back, ready for the next request
    expect(client.idle).toBe(true);
  });

  test("upload backpressure: when the upstream takes only part of a write, the client is paused until it drains", () => {
    const { client, clientSocket, idle } = setup();
    idle.accept = 10;
    client.onData(bytes("PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n"));
    expect(clientSocket.paused).toBe(true); // the head did not go out whole
    idle.accept = Infinity;
    (idle.data as UpstreamConnection).out.onDrain();
    expect(clientSocket.paused).toBe(false); // now it reads the body
    client.onData(bytes("12345678"));
    expect(idle.written).toEndWith("\r\n\r\n12345678");
  });

  test("download backpressure: when the client takes only part, the upstream is paused until the client drains; bytes stay in order", () => {
    const { client, clientSocket, idle } = setup();
    client.onData(bytes("GET /big HTTP/1.1\r\nHost: x\r\n\r\n"));
    const up = idle.data as UpstreamConnection;
    clientSocket.accept = 5;
    up.user?.onUpstreamData(bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234"));
    expect(idle.paused).toBe(true);
    clientSocket.accept = Infinity;
    client.out.onDrain();
    expect(idle.paused).toBe(false);
    up.user?.onUpstreamData(bytes("56789"));
    expect(clientSocket.written).toBe("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789");
  });

  test("a pipelined second request waits until the first response is complete, then goes upstream on the freed connection", () => {
    const { client, clientSocket, idle } = setup();
    client.onData(bytes("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"));
    expect(idle.written.match(/GET \/\d/g)).toEqual(["GET /1"]);
    (idle.data as UpstreamConnection).user?.onUpstreamData(bytes("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"));
    expect(idle.written.match(/GET \/\d/g)).toEqual(["GET /1", "GET /2"]);
    (idle.data as UpstreamConnection).user?.onUpstreamData(bytes("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"));
    expect(clientSocket.written).toBe("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb");
  });

  test("a kept-alive connection closed by the backend before any answer is retried once on a fresh connection, unseen by the client", async () => {
    const { client, clientSocket, idle, connects } = setup();
    (idle.data as UpstreamConnection).served = 3; // it has carried requests before: it may be stale
    client.onData(bytes("GET /x HTTP/1.1\r\nHost: x\r\n\r\n"));
    (idle.data as UpstreamConnection).onClosed("ECONNRESET");
    await Bun.sleep(0);
    expect(connects).toHaveLength(1);
    expect(connects[0]?.written).toStartWith("GET /x HTTP/1.1\r\n");
    (connects[0]?.data as UpstreamConnection | undefined)?.user?.onUpstreamData(bytes("HTTP/1.1 204 No Content\r\n\r\n"));
    expect(clientSocket.written).toBe("HTTP/1.1 204 No Content\r\n\r\n");
  });

  test("with the only backend refusing, a GET gets one 502 and nothing else is written", async () => {
    const { client, clientSocket, origin, setConnectFails, pool } = setup();
    origin.idle.length = 0;
    setConnectFails(true);
    client.onData(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    await Bun.sleep(5);
    expect(clientSocket.written).toStartWith("HTTP/1.1 502 Bad Gateway\r\n");
    expect(clientSocket.written.match(/HTTP\/1\.1/g)).toHaveLength(1);
    expect(pool.backends[0]?.inflight).toBe(0);
  });
});
