/**
 * WebSocket upgrades through Fulcrum to a real backend: frames both ways,
 * subprotocols, close codes in both directions, and a dead backend.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cleanupAfterAll, startBackend, startFulcrum, waitFor, type Running } from "../helpers/procs.ts";

cleanupAfterAll();

let backend: Running;
let lb: Running;

beforeAll(async () => {
  backend = await startBackend("ws");
  lb = await startFulcrum(["--port", "0", "--backend", backend.url]);
});
afterAll(async () => {
  await lb.stop();
});

/** Opens a WebSocket through the balancer and collects what arrives. */
async function connect(protocols?: string[]) {
  const ws = new WebSocket(`ws://127.0.0.1:${lb.port}/ws`, protocols);
  ws.binaryType = "arraybuffer";
  const received: (string | ArrayBuffer)[] = [];
  ws.addEventListener("message", (e) => received.push(e.data as string | ArrayBuffer));
  const closed = new Promise<CloseEvent>((resolve) => ws.addEventListener("close", (e) => resolve(e)));
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve(), { once: true });
    ws.addEventListener("error", () => reject(new Error("websocket failed")), { once: true });
  });
  return { ws, received, closed };
}

describe("WebSocket proxying", () => {
  test("relays text and binary frames both ways", async () => {
    const { ws, received } = await connect();
    await waitFor(() => received.length >= 1, 3000, "greeting");
    expect(received[0]).toBe("hello from ws");
    ws.send("ping");
    ws.send(new Uint8Array([1, 2, 3, 250]));
    await waitFor(() => received.length >= 3, 3000, "echoes");
    expect(received[1]).toBe("ping");
    expect(new Uint8Array(received[2] as ArrayBuffer)).toEqual(new Uint8Array([1, 2, 3, 250]));
    ws.close(1000);
  });

  test("negotiates the subprotocol the backend chose", async () => {
    const { ws } = await connect(["other", "chat"]);
    expect(ws.protocol).toBe("chat");
    ws.close();
  });

  test("a close from the backend reaches the client with its code and reason", async () => {
    const { ws, closed } = await connect();
    ws.send("close:4002:backend says bye");
    const event = await closed;
    expect(event.code).toBe(4002);
    expect(event.reason).toBe("backend says bye");
  });

  test("a close from the client reaches the backend with its code and reason", async () => {
    const { ws } = await connect();
    ws.close(4005, "client leaving");
    await backend.stdout.wait(/ws closed 4005 client leaving/, 3000);
  });

  test("open sockets count as active requests and are released on close", async () => {
    const { ws } = await connect();
    const active = async () => ((await (await fetch(`${lb.url}/lb-status`)).json()) as { instances: { activeRequests: number }[] }).instances[0]?.activeRequests;
    expect(await active()).toBe(1);
    ws.close();
    await waitFor(async () => (await active()) === 0, 3000, "activeRequests back to 0");
  });

  test("an upgrade to a dead backend is a 502, not a dangling socket", async () => {
    const gone = await startBackend("gone");
    const proxy = await startFulcrum(["--port", "0", "--backend", gone.url]);
    await gone.stop("SIGKILL");
    const res = await fetch(`${proxy.url}/ws`, {
      headers: { upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" },
    });
    expect(res.status).toBe(502);
    await proxy.stop();
  });
});
