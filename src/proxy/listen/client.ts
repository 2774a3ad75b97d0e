/**
 * One client connection of the listen engine, its state in `socket.data`.
 * It reads a request head, refuses it (one 4xx, then the connection closes) or
 * hands it to an exchange, and reads the next head only when that exchange is
 * over: requests on one connection are answered in order (keep-alive and
 * pipelining): bytes read past the current request wait in `#buffer`, and
 * only once more than MAX_PIPELINED of them wait is the socket paused. It is
 * not paused otherwise, because a paused Bun socket does not notice its peer
 * going away, and a client that leaves must abort its upstream request.
 *
 * Timeouts are deadlines checked by the edge's one sweeper: the keep-alive
 * idle time between requests (`proxy.idleTimeout`, then a silent close), the
 * whole head (`proxy.headerTimeout`, 408), and whatever the exchange sets
 * (connect, response, a stalled upload).
 */
import type { Socket } from "bun";
import { checkPartialHead, isHeadError, parseRequestHead, type RequestHead } from "../http1/request-head.ts";
import { answeredBy, closesConnection, countFailure, failureResponse, reasonPhrase, type Failure } from "../failures.ts";
import type { AccessFacts } from "../../runtime/log.ts";
import type { EdgeStats } from "../../runtime/outcomes.ts";
import type { ListenContext } from "./context.ts";
import { Outbox, type OutboxOwner } from "./outbox.ts";

const CRLF2 = Buffer.from("\r\n\r\n");
/** Empty lines tolerated before a request line (RFC 9112 §2.2 says at least one). */
const MAX_LEADING_EMPTY_LINES = 4;
/** How long a refused client may keep sending before its connection is cut (so it can read the refusal). */
const LINGER_MS = 2000;
/** Bytes of pipelined requests read ahead of the one being answered before the socket is paused. */
const MAX_PIPELINED = 64 * 1024;

export const enum Deadline {
  None,
  Idle,
  Head,
  /** Set by the exchange: connect, response, upload stall. */
  Exchange,
  Linger,
}

const S_HEAD = 0;
const S_BUSY = 1;
const S_LINGER = 2;
const S_CLOSED = 3;

/** What a client connection hands a request to: an exchange with a backend, a tunnel, or an own endpoint. */
export interface RequestHandler {
  /** Bytes that arrived while the request is handled; returns what belongs to the next request, if any. */
  onClientData(chunk: Uint8Array): Uint8Array | undefined;
  onClientDrained(): void;
  onClientClosed(): void;
  onDeadline(): void;
}

export interface EdgeHooks {
  /** Starts handling a parsed request (the edge decides: own endpoint, WebSocket, or a backend). */
  handle(client: ClientConnection, head: RequestHead, rest: Uint8Array | undefined): void;
  readonly context: () => ListenContext;
  /** The process's edge counters (bytes in and out are counted per chunk). */
  readonly stats: EdgeStats;
  /** The edge is shutting down: close after the current response. */
  readonly draining: () => boolean;
  closed(client: ClientConnection): void;
}

export class ClientConnection implements OutboxOwner {
  readonly socket: Socket<ClientConnection>;
  readonly out: Outbox;
  readonly peerIp: string;
  readonly #hooks: EdgeHooks;
  #state = S_HEAD;
  #buffer: Uint8Array | undefined;
  #handler: RequestHandler | undefined;
  #paused = false;
  #closeWhenFlushed = false;
  /** performance.now() after which `onDeadline` runs; 0 for none. */
  deadline = 0;
  deadlineKind: Deadline = Deadline.None;
  requests = 0;

  constructor(socket: Socket<ClientConnection>, hooks: EdgeHooks) {
    this.socket = socket;
    this.peerIp = socket.remoteAddress;
    this.#hooks = hooks;
    this.out = new Outbox(this, hooks.stats);
    this.out.attach(socket as Socket<unknown>);
    this.#idle();
  }

  get busy(): boolean {
    return this.#state === S_BUSY;
  }

  /** Idle between requests, nothing buffered: a draining edge may close it at once. */
  get idle(): boolean {
    return this.#state === S_HEAD && this.#buffer === undefined;
  }

  setDeadline(kind: Deadline, ms: number): void {
    this.deadlineKind = kind;
    this.deadline = performance.now() + ms;
  }

  clearDeadline(): void {
    this.deadlineKind = Deadline.None;
    this.deadline = 0;
  }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.socket.pause();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.socket.resume();
  }

  write(data: string | Uint8Array): boolean {
    return this.out.write(data);
  }

  onData(chunk: Uint8Array): void {
    this.#hooks.stats.bytesIn += chunk.byteLength;
    switch (this.#state) {
      case S_HEAD:
        return this.#onHeadBytes(chunk);
      case S_BUSY: {
        const rest = this.#handler ? this.#handler.onClientData(chunk) : chunk;
        if (rest && rest.byteLength > 0) this.#keep(rest);
        return;
      }
      default:
        return; // lingering or closed: what the client still sends is dropped
    }
  }

  /** Bytes past the current request (a pipelined one): kept until it is answered. */
  #keep(rest: Uint8Array): void {
    this.#buffer = this.#buffer ? Buffer.concat([this.#buffer, rest]) : rest;
    if (this.#buffer.byteLength > MAX_PIPELINED) this.pause();
  }

  #onHeadBytes(chunk: Uint8Array): void {
    let bytes = this.#buffer ? Buffer.concat([this.#buffer, chunk]) : (chunk as Buffer);
    this.#buffer = undefined;
    let start = 0;
    for (let i = 0; i < MAX_LEADING_EMPTY_LINES && bytes[start] === 13 && bytes[start + 1] === 10; i++) start += 2;
    if (start > 0) bytes = bytes.subarray(start);
    const end = bytes.indexOf(CRLF2);
    if (end < 0) {
      if (bytes.byteLength === 0) return;
      const problem = checkPartialHead(bytes.toString("latin1"));
      if (problem) return this.fail({ kind: "bad-request", status: problem.status, reason: problem.reason });
      this.#buffer = bytes;
      if (this.deadlineKind !== Deadline.Head) this.setDeadline(Deadline.Head, this.#hooks.context().proxy.headerTimeout);
      return;
    }
    const head = parseRequestHead(bytes.toString("latin1", 0, end));
    if (isHeadError(head)) return this.fail({ kind: "bad-request", status: head.status, reason: head.reason });
    this.clearDeadline();
    this.#state = S_BUSY;
    this.requests++;
    const rest = end + 4 < bytes.byteLength ? bytes.subarray(end + 4) : undefined;
    this.#hooks.handle(this, head, rest);
  }

  /** The request is being handled by `handler` (it gets the body and later bytes). */
  attach(handler: RequestHandler): void {
    this.#handler = handler;
  }

  /**
   * The current request is answered. With `keepAlive`, the next request is read
   * (one already buffered is started at once); otherwise the connection closes
   * once the response is written (lingering when the request was not read whole).
   */
  done(keepAlive: boolean, requestRead = true): void {
    this.#handler = undefined;
    if (this.#state !== S_BUSY) return;
    if (!keepAlive || this.#hooks.draining()) return this.#close(requestRead);
    this.#state = S_HEAD;
    const buffered = this.#buffer;
    this.#buffer = undefined;
    if (buffered) return this.#onHeadBytes(buffered);
    this.#idle();
    this.resume();
  }

  /**
   * Answers with a failure (nothing of a response was written yet); refusals of
   * bad requests close the connection. `about` names the request for the access line.
   */
  fail(failure: Failure, keepAlive = false, about?: { readonly method: string; readonly path: string; readonly ms: number; readonly facts: AccessFacts }): void {
    const ctx = this.#hooks.context();
    countFailure(ctx.stats, failure);
    const close = !keepAlive || closesConnection(failure) || this.#hooks.draining();
    const { status, headers, body } = failureResponse(failure);
    let head = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`;
    for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
    head += `content-length: ${body.length}\r\n${close ? "connection: close\r\n" : ""}\r\n`;
    this.out.writeAssembled(head + body);
    if (ctx.log.access) {
      const facts = about ? { ...about.facts, bytesOut: head.length + body.length } : { requestId: null, client: this.peerIp, bytesIn: null, bytesOut: head.length + body.length };
      ctx.log.response(about?.method ?? "-", about?.path ?? "-", answeredBy(failure), status, about?.ms ?? 0, facts);
    }
    this.#handler = undefined;
    if (close) this.#close(false);
    else this.done(true);
  }

  /** Cuts the connection now (a response broke off midway: the client must not take it as complete). */
  abort(): void {
    this.#handler = undefined;
    this.#terminate();
  }

  /** Closes once everything written has gone out; `lingering`: keep reading (and dropping) a little first, so the client sees the answer. */
  #close(requestRead: boolean): void {
    this.#handler = undefined;
    this.#state = S_LINGER;
    this.#buffer = undefined;
    this.resume();
    if (requestRead) this.#closeWhenFlushed = true;
    else this.setDeadline(Deadline.Linger, LINGER_MS);
    if (this.out.empty) this.onOutboxDrained();
  }

  onOutboxDrained(): void {
    if (this.#state === S_LINGER) {
      if (this.#closeWhenFlushed) this.socket.end();
      else this.socket.shutdown();
      return;
    }
    this.#handler?.onClientDrained();
  }

  #idle(): void {
    this.setDeadline(Deadline.Idle, this.#hooks.context().proxy.idleTimeout);
  }

  /** The sweeper found the deadline passed. */
  onDeadline(): void {
    const kind = this.deadlineKind;
    this.clearDeadline();
    switch (kind) {
      case Deadline.Idle:
        this.socket.end();
        return;
      case Deadline.Head:
        return this.fail({ kind: "client-timeout", what: "head" });
      case Deadline.Exchange:
        return this.#handler?.onDeadline();
      case Deadline.Linger:
        return this.#terminate();
    }
  }

  /** Shutting down: an idle connection closes now, a busy one after its response. */
  drain(): void {
    if (this.idle) this.socket.end();
  }

  /**
   * The client half-closed. As nginx does, that is the client going away: a
   * request being answered is aborted upstream. A lingering close just ends.
   */
  onEnd(): void {
    if (this.#state === S_LINGER) return this.#terminate();
    const handler = this.#handler;
    this.#handler = undefined;
    this.#state = S_CLOSED;
    handler?.onClientClosed();
    this.socket.end();
  }

  #terminate(): void {
    this.#state = S_CLOSED;
    this.socket.terminate();
  }

  onClosed(): void {
    if (this.#state === S_CLOSED && this.#handler === undefined) return this.#hooks.closed(this);
    this.#state = S_CLOSED;
    this.out.detach();
    const handler = this.#handler;
    this.#handler = undefined;
    handler?.onClientClosed();
    this.#hooks.closed(this);
  }
}
