/**
 * The balancer's own endpoints (`/lb-status`, `/lb-admin/...`, ...) on the
 * listen engine's port. They are rare, so they may cost what the proxied path
 * must not: the request becomes a `Request` (admin bodies are read whole, up to
 * 1 MiB), the handler's `Response` is written as bytes; an event stream
 * (`text/event-stream`) is written chunked as it comes, everything else with
 * its Content-Length.
 */
import { ChunkedDecoder, ChunkedError } from "../http1/chunked.ts";
import { fieldList, type RequestHead } from "../http1/request-head.ts";
import { reasonPhrase } from "../failures.ts";
import type { ClientConnection, RequestHandler } from "./client.ts";
import type { ListenContext } from "./context.ts";

const MAX_ADMIN_BODY = 1024 * 1024;

/** Serves `head` when it is one of the balancer's own endpoints; false when it is not (it is proxied then). */
export function serveOwn(client: ClientConnection, ctx: ListenContext, head: RequestHead, rest: Uint8Array | undefined): boolean {
  const own = ctx.own;
  if (!own) return false;
  const hasBody = head.contentLength > 0 || head.chunked;
  if (head.path.startsWith("/lb-admin/")) {
    new AdminBody(client, ctx, head, rest);
    return true;
  }
  const result = own(toRequest(head, undefined), head.path);
  if (result === undefined) return false;
  // A body sent to a read-only endpoint is not read: the connection closes after the answer.
  const stream = new OwnResponse(client, head, head.keepAlive && !hasBody);
  client.attach(stream);
  if (rest) client.onData(rest); // a pipelined request waits for this answer
  void Promise.resolve(result).then((res) => stream.write(res), () => stream.write(new Response("500 Internal Server Error\n", { status: 500 })));
  return true;
}

function toRequest(head: RequestHead, body: Uint8Array | undefined): Request {
  const headers = new Headers();
  for (const [name, value] of fieldList(head)) headers.append(name, value);
  return new Request(`http://${head.host ?? "localhost"}${head.path}`, { method: head.method, headers, body: body && body.byteLength > 0 ? body : undefined });
}

/** Collects an admin request's body, then answers it. */
class AdminBody implements RequestHandler {
  readonly #client: ClientConnection;
  readonly #ctx: ListenContext;
  readonly #head: RequestHead;
  readonly #parts: Uint8Array[] = [];
  #size = 0;
  #remaining: number;
  readonly #decoder: ChunkedDecoder | undefined;
  #done = false;

  constructor(client: ClientConnection, ctx: ListenContext, head: RequestHead, rest: Uint8Array | undefined) {
    this.#client = client;
    this.#ctx = ctx;
    this.#head = head;
    this.#remaining = Math.max(0, head.contentLength);
    this.#decoder = head.chunked ? new ChunkedDecoder(true) : undefined;
    client.attach(this);
    if (head.contentLength > MAX_ADMIN_BODY) {
      client.fail({ kind: "too-large", limit: MAX_ADMIN_BODY });
      return;
    }
    if (!head.chunked && this.#remaining === 0) {
      this.#answer();
      return;
    }
    const leftover = rest ? this.onClientData(rest) : undefined;
    if (leftover && leftover.byteLength > 0) client.onData(leftover);
    if (!this.#done) client.resume();
  }

  onClientData(chunk: Uint8Array): Uint8Array | undefined {
    if (this.#done) return chunk;
    let rest: Uint8Array | undefined;
    if (this.#decoder) {
      let used: number;
      try {
        used = this.#decoder.push(chunk);
      } catch (error) {
        this.#done = true;
        this.#client.fail({ kind: "bad-body", reason: (error as ChunkedError).message });
        return undefined;
      }
      for (const piece of this.#decoder.pieces) this.#add(piece.slice());
      if (used < chunk.byteLength) rest = chunk.subarray(used);
      if (this.#decoder.done) this.#answer();
    } else {
      const take = Math.min(this.#remaining, chunk.byteLength);
      this.#add(chunk.subarray(0, take));
      this.#remaining -= take;
      if (take < chunk.byteLength) rest = chunk.subarray(take);
      if (this.#remaining === 0) this.#answer();
    }
    if (this.#size > MAX_ADMIN_BODY && !this.#done) {
      this.#done = true;
      this.#client.fail({ kind: "too-large", limit: MAX_ADMIN_BODY });
    }
    return rest;
  }

  #add(part: Uint8Array): void {
    this.#parts.push(part);
    this.#size += part.byteLength;
  }

  #answer(): void {
    if (this.#done) return;
    this.#done = true;
    const own = this.#ctx.own as NonNullable<ListenContext["own"]>;
    const stream = new OwnResponse(this.#client, this.#head, this.#head.keepAlive);
    this.#client.attach(stream);
    const body = this.#parts.length > 0 ? Buffer.concat(this.#parts) : undefined;
    void Promise.resolve(own(toRequest(this.#head, body), this.#head.path) ?? Response.json({ error: "not found" }, { status: 404 })).then(
      (res) => stream.write(res),
      () => stream.write(new Response("500 Internal Server Error\n", { status: 500 })),
    );
  }

  onClientDrained(): void {}
  onClientClosed(): void {
    this.#done = true;
  }
  onDeadline(): void {}
}

/** Writes one `Response` to the client as HTTP/1.1 bytes. */
class OwnResponse implements RequestHandler {
  readonly #client: ClientConnection;
  readonly #head: RequestHead;
  readonly #keepAlive: boolean;
  #reader: { cancel(): Promise<void> } | undefined;
  #wake: (() => void) | undefined;
  #gone = false;

  constructor(client: ClientConnection, head: RequestHead, keepAlive: boolean) {
    this.#client = client;
    this.#head = head;
    this.#keepAlive = keepAlive;
  }

  async write(res: Response): Promise<void> {
    if (this.#gone) return;
    const status = res.status;
    let text = `HTTP/1.1 ${status} ${res.statusText || reasonPhrase(status)}\r\n`;
    res.headers.forEach((value, name) => {
      if (name !== "set-cookie" && name !== "content-length" && name !== "transfer-encoding" && name !== "connection") text += `${name}: ${value}\r\n`;
    });
    for (const cookie of res.headers.getSetCookie()) text += `set-cookie: ${cookie}\r\n`;
    if (!this.#keepAlive) text += "connection: close\r\n";
    const noBody = this.#head.method === "HEAD" || status === 204 || status === 304;
    if (res.headers.get("content-type")?.startsWith("text/event-stream") && res.body && !noBody) return this.#stream(text, res.body);
    const body = noBody ? new Uint8Array(0) : new Uint8Array(await res.arrayBuffer());
    if (this.#gone) return;
    this.#client.write(Buffer.concat([Buffer.from(`${text}content-length: ${body.byteLength}\r\n\r\n`, "latin1"), body]));
    this.#client.done(this.#keepAlive);
  }

  /** An event stream: chunked, as it comes, waiting for the client when it reads slowly; ends when the stream or the client does. */
  async #stream(text: string, body: ReadableStream<Uint8Array>): Promise<void> {
    this.#client.write(`${text}transfer-encoding: chunked\r\n\r\n`);
    const reader = (this.#reader = body.getReader());
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done || this.#gone) break;
        if (value.byteLength === 0) continue;
        const flowing = this.#client.write(Buffer.concat([Buffer.from(`${value.byteLength.toString(16)}\r\n`), value, Buffer.from("\r\n")]));
        if (!flowing) await new Promise<void>((resolve) => (this.#wake = resolve));
      }
    } catch {
      // the stream failed or was cancelled: end the response
    }
    if (this.#gone) return;
    this.#client.write("0\r\n\r\n");
    this.#client.done(this.#keepAlive);
  }

  onClientData(chunk: Uint8Array): Uint8Array | undefined {
    return chunk;
  }

  onClientDrained(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  onClientClosed(): void {
    this.#gone = true;
    void this.#reader?.cancel().catch(() => {});
    this.onClientDrained();
  }

  onDeadline(): void {}
}
