/**
 * One request through the listen engine: pick a backend, take a pooled
 * upstream connection (or open one), write the forwarded head with the first
 * body bytes in one write, relay the rest of the body and the response with
 * backpressure both ways, and hand the upstream connection back when the
 * exchange leaves it clean.
 *
 * Retries follow decide/retry.ts: a backend that refused or reset before
 * answering is retried elsewhere when the request is idempotent or had no
 * body, and only while the body is still held (not yet streamed); a kept-alive
 * connection the backend closed just as it was reused is retried once on a
 * fresh one. A refusal is decided before anything is forwarded; a body that
 * turns bad mid-stream aborts the upstream connection (never reused), so the
 * backend never sees a complete request the client was told failed.
 */
import { classifyFetchError, retryDelayMs, shouldRetry, type UpstreamFailure } from "../../decide/retry.ts";
import { recordFailure, recordResponse } from "../outcome.ts";
import type { AccessFacts } from "../../runtime/log.ts";
import type { Member } from "../../runtime/pool.ts";
import type { PickContext } from "../../types.ts";
import { selectBackend, waitForSlot } from "../select.ts";
import { ChunkedDecoder, ChunkedError } from "../http1/chunked.ts";
import { forwardHead } from "../http1/forward-head.ts";
import { fieldValue, type RequestHead } from "../http1/request-head.ts";
import { Deadline, type ClientConnection, type RequestHandler } from "./client.ts";
import type { ListenContext } from "./context.ts";
import { ResponseRelay } from "./response-relay.ts";
import type { UpstreamConnection, UpstreamUser } from "./upstream.ts";

/**
 * A request with a body that cannot be sent again only reuses a connection
 * idle for less than this: the older one is, the likelier the backend closes
 * it just as we write, and then the request is lost.
 */
const SAFE_REUSE_MS = 1000;
const CONTINUE = "HTTP/1.1 100 Continue\r\n\r\n";

const B_NONE = 0;
const B_LENGTH = 1;
const B_CHUNKED = 2;

export class Exchange implements RequestHandler, UpstreamUser, PickContext {
  readonly client: ClientConnection;
  readonly ctx: ListenContext;
  readonly head: RequestHead;
  readonly clientIp: string;
  readonly started = performance.now();
  backend: Member | undefined;
  upstream: UpstreamConnection | undefined;
  #tried: Member[] | undefined;
  #attempt = 0;
  readonly #body: number;
  /** Length-framed: body bytes still to come from the client. */
  #remaining: number;
  #decoder: ChunkedDecoder | undefined;
  /** Body bytes (already framed for upstream) held until the upstream connection is ready; kept for a retry until more is streamed. */
  #held: Uint8Array[] = [];
  #streamed = false;
  requestDone: boolean;
  #relay: ResponseRelay | undefined;
  #finished = false;
  /** Counted in the retry budget's retries in flight. */
  #retrying = false;
  #sentAt = 0;
  /** The X-Request-Id the backend got: the client's, or the one Fulcrum made. */
  #requestId: string | null;
  /** Request bytes read from the client: the head with its blank line, then the body. */
  #bytesIn: number;

  constructor(client: ClientConnection, ctx: ListenContext, head: RequestHead, rest: Uint8Array | undefined) {
    this.client = client;
    this.ctx = ctx;
    this.head = head;
    this.clientIp = ctx.clientIp(client.peerIp, head.forwardedFor);
    this.#requestId = head.requestId;
    this.#bytesIn = head.text.length + 4;
    this.#body = head.chunked ? B_CHUNKED : head.contentLength > 0 ? B_LENGTH : B_NONE;
    this.#remaining = head.contentLength > 0 ? head.contentLength : 0;
    this.requestDone = this.#body === B_NONE;
    if (this.#body === B_CHUNKED) this.#decoder = new ChunkedDecoder(true);
    client.attach(this);
    // Until the upstream is ready, the body is not read (only what already came is held).
    if (!this.requestDone) client.pause();
    if (rest) {
      const leftover = this.onClientData(rest);
      if (leftover && leftover.byteLength > 0) this.client.onData(leftover);
    }
  }

  header(name: string): string | null {
    return fieldValue(this.head, name);
  }

  start(): void {
    if (this.#finished) return; // refused already (a bad body in the first bytes)
    if (this.#pick()) return;
    // Every backend that would take it is at its maxConnections: wait for a slot (proxy/queue.ts).
    const ctx = this.ctx;
    const waiting = ctx.queue.wait(
      () => this.#finished || this.#pick(),
      () => this.#finished || this.#fail({ kind: "no-backend", retryAfterSeconds: ctx.retryAfterSeconds, why: `no backend slot free within ${ctx.proxy.queue.timeout}ms` }),
    );
    if (!waiting) this.#fail({ kind: "no-backend", retryAfterSeconds: ctx.retryAfterSeconds, why: "every backend is at its maxConnections and the queue is full" });
  }

  /** Picks a backend and sends to it (or answers "no backend"); false only when it must wait for a slot. */
  #pick(): boolean {
    const ctx = this.ctx;
    const backend = selectBackend(ctx.strategy, ctx.pool.backends, this, this.#tried, ctx.pool.limited, ctx.pool.panic);
    if (!backend) {
      if (ctx.pool.limited && waitForSlot(ctx.pool.backends, this.#tried)) return false;
      if (this.#attempt === 0 && this.#tried === undefined && ctx.coldStart) {
        const coldStart = ctx.coldStart;
        this.#tried = [];
        void coldStart().then(() => !this.#finished && this.start());
        return true;
      }
      this.#fail(this.#tried && this.#tried.length > 0 ? { kind: "all-failed", detail: `${this.#tried.length} tried` } : { kind: "no-backend", retryAfterSeconds: ctx.retryAfterSeconds });
      return true;
    }
    this.#dispatch(backend);
    return true;
  }

  #dispatch(backend: Member): void {
    const ctx = this.ctx;
    this.backend = backend;
    ctx.pool.begin(backend);
    if (ctx.log.access) ctx.log.request(this.head.method, this.head.path, backend.url);
    const pool = ctx.upstreams.for(backend);
    const upstream = pool.take(this.#replayable() ? ctx.upstreams.idleMs : SAFE_REUSE_MS, performance.now());
    if (upstream) {
      this.#send(upstream);
      return;
    }
    this.client.setDeadline(Deadline.Exchange, ctx.proxy.connectTimeout + 1000); // the connect itself times out first
    pool.connect(ctx.proxy.connectTimeout).then(
      (connection) => {
        if (this.#finished || this.backend !== backend) return connection.release(true);
        this.#send(connection);
      },
      (error: { code?: string }) => {
        if (this.#finished || this.backend !== backend) return;
        this.#upstreamFailed(classifyFetchError(error), false);
      },
    );
  }

  /** Nothing was streamed past what is held, so the request can be sent again. */
  #replayable(): boolean {
    return this.#body === B_NONE || !this.#streamed;
  }

  #send(upstream: UpstreamConnection): void {
    const ctx = this.ctx;
    const backend = this.backend as Member;
    this.upstream = upstream;
    upstream.user = this;
    upstream.served++;
    this.#relay = new ResponseRelay(this);
    const host = ctx.proxy.preserveHost && this.head.host !== null ? this.head.host : backend.host;
    const head = forwardHead(this.head, {
      peerIp: this.client.peerIp,
      peerTrusted: ctx.proxy.trustProxy !== false && ctx.isTrusted(this.client.peerIp),
      proto: ctx.tls ? "https" : "http",
      host,
      requestId: () => (this.#requestId = ctx.newRequestId()),
      body: this.#body === B_NONE ? "none" : this.#body === B_LENGTH ? "length" : "chunked",
    });
    const held = this.#held;
    // The head and the body bytes already here go out in one write.
    const flowing = upstream.writeAssembled(head, held);
    if (this.requestDone) return this.#requestSent();
    if (this.head.expectContinue && held.length === 0) this.client.write(CONTINUE);
    if (flowing) this.#readBody();
  }

  /** Reads more of the body from the client (the upstream takes it). */
  #readBody(): void {
    this.client.setDeadline(Deadline.Exchange, this.ctx.proxy.idleTimeout);
    this.client.resume();
  }

  #requestSent(): void {
    this.requestDone = true;
    this.#sentAt = performance.now();
    // The response timeout starts once the request is sent: a long upload is not a slow backend.
    if (!this.#relay?.started) this.client.setDeadline(Deadline.Exchange, this.ctx.proxy.responseTimeout);
  }

  onClientData(chunk: Uint8Array): Uint8Array | undefined {
    if (this.requestDone) return chunk; // the next request's bytes
    const before = chunk.byteLength;
    let piece: Uint8Array;
    let rest: Uint8Array | undefined;
    if (this.#body === B_LENGTH) {
      const take = Math.min(this.#remaining, chunk.byteLength);
      piece = take === chunk.byteLength ? chunk : chunk.subarray(0, take);
      if (take < chunk.byteLength) rest = chunk.subarray(take);
      this.#remaining -= take;
    } else {
      const decoder = this.#decoder as ChunkedDecoder;
      let used: number;
      try {
        used = decoder.push(chunk);
      } catch (error) {
        this.#bodyFailed({ kind: "bad-body", reason: (error as ChunkedError).message });
        return undefined;
      }
      if (decoder.decoded > this.ctx.proxy.maxBodySize) {
        this.#bodyFailed({ kind: "too-large", limit: this.ctx.proxy.maxBodySize });
        return undefined;
      }
      piece = reframe(decoder.pieces, decoder.done);
      if (used < chunk.byteLength) rest = chunk.subarray(used);
    }
    this.#bytesIn += before - (rest?.byteLength ?? 0);
    const complete = this.#body === B_LENGTH ? this.#remaining === 0 : (this.#decoder as ChunkedDecoder).done;
    if (piece.byteLength > 0) {
      const upstream = this.upstream;
      if (!upstream) this.#held.push(piece);
      else {
        this.#streamed = true;
        this.#held = [];
        if (!upstream.write(piece) && !complete) {
          // The backend is slower than the client: stop reading until it drains.
          this.client.pause();
          this.client.clearDeadline();
        } else if (!complete) this.client.setDeadline(Deadline.Exchange, this.ctx.proxy.idleTimeout);
      }
    }
    if (complete) {
      this.requestDone = true;
      // Reading on lets the client's disconnect be seen (and pipelined requests wait in its buffer).
      this.client.resume();
      if (this.upstream) this.#requestSent();
    }
    return rest;
  }

  onUpstreamDrained(): void {
    if (!this.requestDone && this.upstream) this.#readBody();
  }

  onClientDrained(): void {
    this.#relay?.clientDrained();
  }

  onUpstreamData(chunk: Buffer): void {
    if (!this.#relay?.started) {
      // First response byte: the backend answered; the response timeout no longer applies.
      if (this.client.deadlineKind === Deadline.Exchange && this.requestDone) this.client.clearDeadline();
      if (this.backend) this.ctx.pool.observeResponseTime(this.backend, performance.now() - (this.#sentAt || this.started));
    }
    this.#relay?.push(chunk);
  }

  onUpstreamClosed(code: string): void {
    const relay = this.#relay;
    if (relay?.upstreamClosed()) return; // a body delimited by the close ended
    if (this.#finished) return;
    const reused = (this.upstream?.served ?? 0) > 1;
    this.upstream = undefined;
    if (relay?.started) {
      // The response broke off midway: the client must not take it as complete.
      this.#countFailure("reset");
      return this.#end(false, "aborted");
    }
    this.#upstreamFailed(classifyFetchError({ code }), reused);
  }

  /** The backend failed before answering: retry elsewhere when that is safe, else tell the client. */
  #upstreamFailed(failure: UpstreamFailure, reusedConnection: boolean): void {
    const ctx = this.ctx;
    const backend = this.backend as Member;
    this.upstream?.destroy();
    this.upstream = undefined;
    // A kept-alive connection closed just as it was reused: nothing was processed; try a fresh one once (the slot is kept).
    if (reusedConnection && failure === "reset" && this.#replayable()) {
      ctx.stats.retries++;
      ctx.upstreams.for(backend).connect(ctx.proxy.connectTimeout).then(
        (connection) => (this.#finished ? connection.release(true) : this.#send(connection)),
        (error: { code?: string }) => !this.#finished && this.#upstreamFailed(classifyFetchError(error), false),
      );
      return;
    }
    recordFailure(ctx.pool, ctx.log, backend, failure);
    ctx.pool.release(backend);
    this.backend = undefined;
    const request = { method: this.head.method, hasBody: this.#body !== B_NONE, bodyReplayable: this.#replayable() };
    if (!shouldRetry(failure, request, this.#attempt, ctx.proxy.retries)) return this.#upstreamGaveUp(failure, backend);
    if (this.#retrying || this.#takeRetry()) return this.#retry(backend);
    // Over the retry budget: wait for a retry in flight to end, or give up after the queue timeout.
    const waiting = ctx.retryBudget.wait(
      () => {
        if (this.#finished) return true;
        if (!this.#takeRetry()) return false;
        // Woken from inside another exchange's ending: start on a clean stack.
        queueMicrotask(() => !this.#finished && this.#retry(backend));
        return true;
      },
      () => {
        if (this.#finished) return;
        ctx.stats.retriesDenied++;
        this.#upstreamGaveUp(failure, backend);
      },
    );
    if (waiting) return;
    ctx.stats.retriesDenied++;
    this.#upstreamGaveUp(failure, backend);
  }

  #upstreamGaveUp(failure: UpstreamFailure, backend: Member): void {
    this.#fail({ kind: "upstream", failure, backend: backend.url, responseTimeout: this.ctx.proxy.responseTimeout });
  }

  /** Counts this exchange in the retry budget (proxy/retry-budget.ts) when there is room; once per exchange. */
  #takeRetry(): boolean {
    this.#retrying = this.ctx.retryBudget.take(this.ctx.pool.backends, this.ctx.proxy.retryBudget);
    return this.#retrying;
  }

  #retry(failed: Member): void {
    this.ctx.stats.retries++;
    (this.#tried ??= []).push(failed);
    this.#attempt++;
    const delay = retryDelayMs(this.#attempt, Math.random);
    if (delay > 0) setTimeout(() => !this.#finished && this.start(), delay);
    else this.start();
  }

  /** The exchange is over (answered, failed, or its client gone); false when it already was. */
  #settle(): boolean {
    if (this.#finished) return false;
    this.#finished = true;
    if (this.#retrying) this.ctx.retryBudget.release();
    return true;
  }

  #countFailure(failure: UpstreamFailure): void {
    if (this.backend) recordFailure(this.ctx.pool, this.ctx.log, this.backend, failure);
  }

  /** Gives the backend's slot back (once). */
  #release(): void {
    const backend = this.backend;
    this.backend = undefined;
    if (backend) this.ctx.pool.release(backend);
  }

  /** The client's body broke its framing or grew too large: the upstream request is aborted, never completed. */
  #bodyFailed(failure: Parameters<ClientConnection["fail"]>[0]): void {
    this.upstream?.destroy();
    this.upstream = undefined;
    this.#release();
    if (this.#relay?.started) return this.#end(false, "aborted");
    this.#fail(failure);
  }

  onDeadline(): void {
    if (this.#finished) return;
    if (!this.requestDone && this.upstream) {
      // The client stopped sending its body.
      return this.#bodyFailed({ kind: "client-timeout", what: "body" });
    }
    if (this.upstream) {
      this.upstream.destroy();
      this.upstream = undefined;
      return this.#upstreamFailed("timeout", false);
    }
    if (this.backend) return this.#upstreamFailed("connect-timeout", false);
  }

  onClientClosed(): void {
    if (!this.#settle()) return;
    // Mid-message: the upstream connection cannot carry another request.
    this.upstream?.destroy();
    this.upstream = undefined;
    this.#release();
  }

  #fail(failure: Parameters<ClientConnection["fail"]>[0]): void {
    if (!this.#settle()) return;
    this.#release();
    this.client.fail(failure, this.head.keepAlive && this.requestDone, { method: this.head.method, path: this.head.path, ms: performance.now() - this.started, facts: this.access(null) });
  }

  /**
   * The response is complete (`outcome` "ok") or broke off ("aborted"): the
   * upstream goes back to its pool when clean, the client reads its next request or closes.
   */
  #end(clientKeepAlive: boolean, outcome: "ok" | "aborted", upstreamReusable = false): void {
    if (!this.#settle()) return;
    this.#release();
    const upstream = this.upstream;
    this.upstream = undefined;
    upstream?.release(upstreamReusable && this.requestDone);
    if (outcome === "aborted") return this.client.abort();
    this.client.done(clientKeepAlive && this.requestDone, this.requestDone);
  }

  /** Called by the relay once the whole response went to the client. */
  responseDone(status: number, clientKeepAlive: boolean, upstreamReusable: boolean): void {
    const backend = this.backend;
    if (backend) {
      recordResponse(this.ctx.pool, this.ctx.log, backend, status);
      if (this.ctx.log.access) this.ctx.log.response(this.head.method, this.head.path, backend.url, status, performance.now() - (this.#sentAt || this.started), this.access(this.#relay?.bytesOut ?? null));
    }
    this.#end(clientKeepAlive, "ok", upstreamReusable);
  }

  /** Called by the relay when the response cannot be used (bad head) before anything went to the client. */
  responseFailed(reason: string): void {
    const backend = this.backend as Member;
    this.#countFailure("protocol");
    this.upstream?.destroy();
    this.upstream = undefined;
    this.#release();
    if (!this.#settle()) return;
    if (this.#relay?.started && this.#relay.wroteToClient) return this.client.abort();
    this.client.fail({ kind: "bad-response", backend: backend.url, reason });
  }

  /** The relay broke off after writing to the client (bad chunked framing from the backend). */
  responseAborted(): void {
    this.#countFailure("protocol");
    this.upstream?.destroy();
    this.upstream = undefined;
    this.#end(false, "aborted");
  }

  /** The access line's facts (bytesOut: what went to the client, null when Fulcrum answered itself). */
  access(bytesOut: number | null): AccessFacts {
    return { requestId: this.#requestId, client: this.clientIp, bytesIn: this.#bytesIn, bytesOut };
  }

  /** A tunnel took over both connections and the request in flight (tunnel.ts). */
  handOver(): void {
    this.#settle();
    this.upstream = undefined;
    this.backend = undefined;
  }
}

/** Decoded chunk data framed again for the backend: one chunk per piece, and the last chunk when done. */
function reframe(pieces: readonly Uint8Array[], done: boolean): Uint8Array {
  if (pieces.length === 0 && !done) return EMPTY;
  const parts: Uint8Array[] = [];
  for (const piece of pieces) {
    if (piece.byteLength === 0) continue;
    parts.push(Buffer.from(`${piece.byteLength.toString(16)}\r\n`, "latin1"), piece, CRLF);
  }
  if (done) parts.push(LAST);
  return parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts);
}

const EMPTY = new Uint8Array(0);
const CRLF = Buffer.from("\r\n");
const LAST = Buffer.from("0\r\n\r\n");
