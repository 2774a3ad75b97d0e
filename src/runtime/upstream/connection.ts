/**
 * One upstream HTTP/1.1 connection over Bun.connect, carrying one exchange at
 * a time (no pipelining). It writes the request (streaming the body with
 * backpressure, re-framed as chunked when its length is unknown), parses the
 * response head, and hands the body on: buffered when small and complete (so
 * the client still gets a Content-Length), otherwise as a stream that pauses
 * the socket while the client is slow. After a clean exchange it goes back to
 * its pool for the next request.
 */
import type { Socket } from "bun";
import { headEnd, MAX_HEAD_BYTES, parseResponseHead, ProtocolError, requestHead, type ResponseHead } from "../../decide/http1.ts";
import { IncomingBody } from "./incoming-body.ts";
import { SocketWriter } from "./socket-writer.ts";
import type { Cancellation, UpstreamRequest } from "./transport.ts";


export interface Origin {
  readonly hostname: string;
  readonly port: number;
  readonly tls: boolean;
}

/** An error shaped like fetch()'s, so decide/retry.ts classifies both transports alike. */
export function upstreamError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

interface Exchange {
  readonly method: string;
  readonly cancel: Cancellation;
  readonly resolve: (response: Response) => void;
  readonly reject: (error: unknown) => void;
  /** The Response was handed out (its body may still be arriving). */
  responded: boolean;
  requestDone: boolean;
  responseDone: boolean;
  /** Any byte of the response arrived (a failure before that may be retried on a fresh connection). */
  gotBytes: boolean;
  head: ResponseHead | undefined;
  body: IncomingBody | undefined;
}

const handlers: Bun.SocketHandler<Connection> = {
  data: (socket, chunk) => socket.data.onData(chunk),
  drain: (socket) => socket.data.onDrain(),
  close: (socket) => socket.data.onClose(upstreamError("ECONNRESET", "upstream connection closed")),
  error: (socket, error) => socket.data.onClose(Object.assign(error, { code: (error as { code?: string }).code ?? "ECONNRESET" })),
  end: (socket) => socket.data.onClose(upstreamError("ECONNRESET", "upstream closed its side")),
};

export class Connection {
  #socket: Socket<Connection> | undefined;
  #exchange: Exchange | undefined;
  #head: Uint8Array | null = null;
  #closed = false;
  #reusable = true;
  readonly #writer = new SocketWriter();
  /** Exchanges started on this connection (1 on its first request). */
  served = 0;
  lastUsed = performance.now();
  /** Set by the pool: called when the connection is free for another request, or gone. */
  onIdle: (connection: Connection) => void = () => {};
  onGone: (connection: Connection) => void = () => {};

  static connect(origin: Origin, timeoutMs: number): Promise<Connection> {
    const connection = new Connection();
    return new Promise((resolve, reject) => {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        reject(upstreamError("ETIMEDOUT", `no connection within ${timeoutMs}ms`));
      }, timeoutMs);
      Bun.connect<Connection>({ hostname: origin.hostname, port: origin.port, tls: origin.tls || undefined, data: connection, socket: handlers }).then(
        (socket) => {
          clearTimeout(timer);
          if (timedOut) return socket.terminate();
          socket.setNoDelay(true);
          connection.#socket = socket;
          connection.#writer.attach(socket as Socket<unknown>);
          resolve(connection);
        },
        (error: Error & { code?: string }) => {
          clearTimeout(timer);
          reject(upstreamError(error.code ?? "ECONNREFUSED", error.message));
        },
      );
    });
  }

  get usable(): boolean {
    return !this.#closed && this.#reusable && this.#exchange === undefined;
  }

  destroy(): void {
    if (this.#closed) return;
    this.#reusable = false;
    this.#socket?.terminate();
    this.onClose(upstreamError("ECONNRESET", "upstream connection destroyed"));
  }

  /** Sends one request; resolves with the response once its head arrived. */
  send(request: UpstreamRequest): Promise<Response> {
    return new Promise<Response>((resolve, reject) => {
      const exchange: Exchange = {
        method: request.method,
        cancel: request.cancel,
        resolve,
        reject,
        responded: false,
        requestDone: false,
        responseDone: false,
        gotBytes: false,
        head: undefined,
        body: undefined,
      };
      this.served++;
      if (this.#closed) return reject(Object.assign(upstreamError("ECONNRESET", "upstream connection closed"), { beforeResponse: true }));
      this.#exchange = exchange;
      if (request.cancel.cancelled) return this.#abort(exchange, request.cancel.reason);
      request.cancel.subscribe((reason) => this.#abort(exchange, reason));

      const { method, path, headers, body } = request;
      if (body === null) {
        this.#write(requestHead(method, path, headers, null));
        exchange.requestDone = true;
      } else if (body instanceof ArrayBuffer) {
        const head = Buffer.from(requestHead(method, path, headers, body.byteLength), "latin1");
        this.#write(Buffer.concat([head, new Uint8Array(body)]));
        exchange.requestDone = true;
      } else {
        const length = headers.get("content-length");
        const known = length !== null && /^\d+$/.test(length);
        this.#write(requestHead(method, path, headers, known ? Number(length) : "chunked"));
        void this.#pump(exchange, body, !known);
      }
    });
  }

  /** Streams the request body, waiting for the socket to drain when it is full. */
  async #pump(exchange: Exchange, body: ReadableStream<Uint8Array>, chunked: boolean): Promise<void> {
    const reader = body.getReader();
    try {
      for (;;) {
        if (this.#exchange !== exchange || this.#closed) return void reader.cancel().catch(() => {});
        const { done, value } = await reader.read();
        if (done) break;
        if (value.byteLength === 0) continue;
        // Every part is written or queued, in order; only then wait if the socket was full.
        let flowing = true;
        if (chunked) flowing = this.#write(`${value.byteLength.toString(16)}\r\n`) && flowing;
        flowing = this.#write(value) && flowing;
        if (chunked) flowing = this.#write("\r\n") && flowing;
        if (!flowing) await this.#writer.drained();
      }
      if (chunked) this.#write("0\r\n\r\n");
      exchange.requestDone = true;
      this.#maybeRelease(exchange);
    } catch (error) {
      // The client's body failed (it went away, or Bun refused it as too large): not the backend's fault.
      this.#reusable = false;
      this.#fail(exchange, Object.assign(upstreamError("ECLIENTBODY", `request body failed: ${String(error)}`), { name: "AbortError" }));
      this.destroy();
    }
  }

  #write(data: string | Uint8Array): boolean {
    return this.#closed ? true : this.#writer.write(data);
  }

  onDrain(): void {
    this.#writer.onDrain();
  }

  onData(chunk: Uint8Array): void {
    const exchange = this.#exchange;
    if (!exchange) {
      // Bytes nobody asked for (e.g. a stray response on an idle connection): never reuse it.
      this.destroy();
      return;
    }
    exchange.gotBytes = true;
    try {
      if (exchange.body) exchange.body.push(chunk);
      else this.#onHeadBytes(exchange, chunk);
    } catch (error) {
      this.#fail(exchange, error instanceof ProtocolError ? upstreamError("EPROTO", `bad response from backend: ${error.message}`) : error);
      this.destroy();
    }
  }

  #onHeadBytes(exchange: Exchange, chunk: Uint8Array): void {
    const bytes = this.#head ? Buffer.concat([this.#head, chunk]) : chunk;
    const end = headEnd(bytes, this.#head ? this.#head.byteLength - 3 : 0);
    if (end < 0) {
      if (bytes.byteLength > MAX_HEAD_BYTES) throw new ProtocolError(`response head over ${MAX_HEAD_BYTES} bytes`);
      this.#head = bytes === chunk ? chunk.slice() : bytes;
      return;
    }
    this.#head = null;
    const head = parseResponseHead(Buffer.from(bytes.buffer, bytes.byteOffset, end).toString("latin1"), exchange.method);
    const rest = bytes.subarray(end + 4);
    if (head.status < 200) {
      if (head.status === 101) throw new ProtocolError("101 Switching Protocols to a plain request");
      if (rest.byteLength > 0) this.#onHeadBytes(exchange, rest); // an interim response: the real one follows
      return;
    }
    exchange.head = head;
    if (!head.keepAlive) this.#reusable = false;
    if (head.framing.kind === "none" && rest.byteLength > 0) this.#reusable = false; // bytes nobody announced
    exchange.body = new IncomingBody(head.framing, {
      respond: (body) => this.#respond(exchange, body),
      finished: (clean) => {
        if (!clean) this.#reusable = false;
        exchange.responseDone = true;
        this.#maybeRelease(exchange);
      },
      pause: () => this.#socket?.pause(),
      resume: () => this.#socket?.resume(),
      // The client went away mid-body: this connection is mid-message, so it cannot be reused.
      abandoned: () => this.destroy(),
    });
    if (rest.byteLength > 0 && !exchange.body.done) exchange.body.push(rest);
  }

  #respond(exchange: Exchange, body: Uint8Array | ReadableStream<Uint8Array> | null): void {
    const head = exchange.head as ResponseHead;
    let response: Response;
    try {
      response = new Response(body, { status: head.status, statusText: head.statusText, headers: head.headers });
    } catch (error) {
      throw new ProtocolError(`unusable response: ${error instanceof Error ? error.message : String(error)}`);
    }
    exchange.responded = true;
    exchange.resolve(response);
  }

  #maybeRelease(exchange: Exchange): void {
    if (!exchange.responseDone || this.#exchange !== exchange) return;
    if (!exchange.requestDone) {
      // The backend answered before the request body was sent (an early 413, say): this connection is done.
      this.#reusable = false;
    }
    exchange.cancel.subscribe(undefined);
    this.#exchange = undefined;
    if (this.#reusable && exchange.requestDone) {
      this.lastUsed = performance.now();
      this.onIdle(this);
    } else this.destroy();
  }

  #fail(exchange: Exchange, error: unknown): void {
    if (this.#exchange !== exchange) return;
    exchange.cancel.subscribe(undefined);
    this.#exchange = undefined;
    if (!exchange.responded) exchange.reject(error);
    else exchange.body?.fail(error);
  }

  #abort(exchange: Exchange, reason: unknown): void {
    this.#fail(exchange, reason ?? new DOMException("aborted", "AbortError"));
    this.destroy();
  }

  onClose(error: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    const exchange = this.#exchange;
    if (exchange) {
      // A body without a length ends with the connection; any other is cut short.
      if (!(exchange.responded && exchange.body?.closed())) this.#fail(exchange, Object.assign(error, { beforeResponse: !exchange.gotBytes }));
    }
    this.#writer.detach();
    this.onGone(this);
  }
}
