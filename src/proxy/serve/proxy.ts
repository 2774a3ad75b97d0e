/**
 * The serve engine's HTTP proxy: pick a backend, stream the request to it with `fetch()`,
 * stream the answer back. Retries connection failures on another backend when
 * that is safe, and turns "no backend", "no answer", "too slow" into 503, 502, 504.
 * Bodies are never buffered (small idempotent bodies excepted, so they can be
 * retried) and never decoded (`decompress: false`).
 */
import type { ResolvedConfig } from "../../config/schema.ts";
import { forwardRequestHeaders, stripHopByHop, upstreamHost } from "../../decide/headers.ts";
import { classifyFetchError, isIdempotent, retryDelayMs, shouldRetry, type UpstreamFailure } from "../../decide/retry.ts";
import type { AccessFacts, Logger } from "../../runtime/log.ts";
import type { Member, Pool } from "../../runtime/pool.ts";
import type { PickContext, Strategy } from "../../types.ts";
import type { EdgeStats } from "../../runtime/outcomes.ts";
import { failureAsResponse } from "../failures.ts";
import { recordFailure, recordResponse } from "../outcome.ts";
import { requestIds } from "../request-id.ts";
import type { SlotQueue } from "../queue.ts";
import type { RetryBudget } from "../retry-budget.ts";
import { selectBackend, waitForSlot } from "../select.ts";
import { Deadlines, type Deadline } from "./deadlines.ts";
import { WatchedBody, type ClientBodyFailure } from "./request-body.ts";
import { normalizeContentLength } from "./request-checks.ts";

/** Idempotent requests with bodies up to this size are buffered so a retry can resend them. */
const REPLAYABLE_BODY_LIMIT = 1 << 20;

export interface ProxyDeps {
  readonly pool: Pool;
  readonly strategy: Strategy;
  readonly proxy: ResolvedConfig["proxy"];
  /** Seconds for `Retry-After` on a 503. */
  readonly retryAfterSeconds: number;
  readonly log: Logger;
  readonly tls: boolean;
  readonly isTrusted: (ip: string) => boolean;
  /** The client address to believe, given the TCP peer and the request. */
  readonly clientIp: (peerIp: string, req: Request) => string;
  /** Called when no backend is available; resolves true once one is (scale from zero). */
  readonly coldStart?: () => Promise<boolean>;
  readonly stats: EdgeStats;
  /** Requests waiting for a backend slot (backends with maxConnections). */
  readonly queue: SlotQueue;
  readonly retryBudget: RetryBudget;
}

/** The server the request came in on: a streamed upload turns Bun's idle timer off for it (the timer ignores body bytes). */
export interface RequestServer {
  timeout(req: Request, seconds: number): void;
}

export type ProxyHandler = (req: Request, peerIp: string, path: string, server: RequestServer) => Promise<Response>;

export interface Proxy {
  readonly handle: ProxyHandler;
  /** Stops the shared timeout timer (the proxy is replaced on reload). */
  close(): void;
}

export function createProxy(deps: ProxyDeps): Proxy {
  const { pool, strategy, log, proxy: cfg } = deps;
  const proto = deps.tls ? "https" : "http";
  const newRequestId = requestIds();
  const deadlines = new Deadlines(Math.min(100, cfg.responseTimeout / 10));

  const { stats } = deps;
  const unavailable = () => failureAsResponse({ kind: "no-backend", retryAfterSeconds: deps.retryAfterSeconds }, stats);
  /** The client stalled (408) or its body failed; mostly nobody is left to read this. */
  const clientFailed = (failure: ClientBodyFailure) =>
    failureAsResponse(failure === "idle" ? { kind: "client-timeout", what: "body" } : { kind: "bad-body", reason: "the request body failed" }, stats);
  const failed = (failure: UpstreamFailure, backend: string) => failureAsResponse({ kind: "upstream", failure, backend, responseTimeout: cfg.responseTimeout });

  async function proxyRequest(req: Request, peerIp: string, path: string, server: RequestServer): Promise<Response> {
    const method = req.method;
    const ctx: PickContext = { clientIp: deps.clientIp(peerIp, req), header: (name) => req.headers.get(name) };

    const clientHost = req.headers.get("host");
    const headers = forwardRequestHeaders(req.headers, {
      peerIp,
      peerTrusted: cfg.trustProxy !== false && deps.isTrusted(peerIp),
      proto,
      newRequestId,
    });
    // The same Content-Length sent twice arrives merged ("5, 5"); the edge refused differing ones.
    const contentLength = req.headers.get("content-length");
    if (contentLength?.includes(",")) headers.set("content-length", normalizeContentLength(contentLength) ?? "0");

    // GET and HEAD bodies are dropped (fetch refuses them, and no backend should act on them).
    let body: ReadableStream<Uint8Array> | ArrayBuffer | null = method === "GET" || method === "HEAD" ? null : req.body;
    const hasBody = body !== null && contentLength !== "0";
    let bodyReplayable = !hasBody;
    let watched: WatchedBody | undefined;
    if (body instanceof ReadableStream && hasBody) {
      const length = Number(headers.get("content-length"));
      if (isIdempotent(method) && length > 0 && length <= REPLAYABLE_BODY_LIMIT) {
        try {
          body = await req.arrayBuffer();
        } catch {
          return clientFailed("error"); // the client went away mid-body
        }
        bodyReplayable = true;
      } else {
        watched = new WatchedBody(body, cfg.idleTimeout);
        body = watched.stream;
        server.timeout(req, 0);
      }
    }

    // What Bun.serve lets the access line know: lengths when declared (bodies stream after this handler returns).
    const access = (bytesOut: number | null): AccessFacts => ({ requestId: headers.get("x-request-id"), client: ctx.clientIp, bytesIn: lengthOf(contentLength), bytesOut });
    let tried: Member[] | undefined;
    let retrying = false;
    try {
    for (let attempt = 0; ; attempt++) {
      const backoff = retryDelayMs(attempt, Math.random);
      if (backoff > 0) {
        await Bun.sleep(backoff);
        if (req.signal.aborted) return clientFailed("error");
      }
      let backend: Member | undefined | "full" | "timeout" = selectBackend(strategy, pool.backends, ctx, tried, pool.limited, pool.panic);
      // Every backend that would take it is at its maxConnections: wait for a slot.
      if (!backend && pool.limited && waitForSlot(pool.backends, tried)) backend = await slot(() => selectBackend(strategy, pool.backends, ctx, tried, true, pool.panic), req.signal);
      if (backend === "full" || backend === "timeout") {
        const why = backend === "full" ? "every backend is at its maxConnections and the queue is full" : `no backend slot free within ${cfg.queue.timeout}ms`;
        return failureAsResponse({ kind: "no-backend", retryAfterSeconds: deps.retryAfterSeconds, why }, stats);
      }
      // Nothing ready on the first try: scaled to zero or (re)starting. Wait for an instance once.
      if (!backend && !tried && deps.coldStart && (await deps.coldStart())) backend = selectBackend(strategy, pool.backends, ctx, tried, pool.limited, pool.panic);
      if (!backend) return tried ? failureAsResponse({ kind: "all-failed", detail: `${tried.length} tried` }) : unavailable();
      if (!cfg.preserveHost || clientHost === null) headers.set("host", upstreamHost(clientHost, cfg.preserveHost, backend.host));
      if (log.access) log.request(method, path, backend.url);

      pool.begin(backend);
      const abort = new AbortController();
      // The response timeout starts once the request is sent: a long upload is not a slow backend.
      let waitStart = performance.now();
      const deadline: Deadline = { at: Infinity, onExpire: () => abort.abort(new DOMException("response timeout", "TimeoutError")) };
      let answered = false;
      const startClock = () => {
        if (answered) return;
        waitStart = performance.now();
        deadline.at = waitStart + cfg.responseTimeout;
        deadlines.add(deadline);
      };
      if (watched) watched.whenEnded(startClock);
      else startClock();
      req.signal.addEventListener("abort", () => abort.abort(new DOMException("client went away", "AbortError")), { once: true });

      let upstream: Response;
      try {
        upstream = await fetch(backend.url + path, { method, headers, body, redirect: "manual", decompress: false, signal: abort.signal });
      } catch (error) {
        answered = true;
        deadlines.remove(deadline);
        pool.release(backend);
        // The client's doing (gone, stalled, body refused): never held against the backend.
        if (watched?.failure || req.signal.aborted) return clientFailed(watched?.failure ?? "error");
        const failure: UpstreamFailure = classifyFetchError(error);
        if (failure === "aborted") return clientFailed("error");
        if (failure === "invalid") return failureAsResponse({ kind: "bad-request", status: 400, reason: "the request cannot be forwarded" }, stats);
        recordFailure(pool, log, backend, failure);
        if (log.access) log.response(method, path, backend.url, failure === "timeout" ? 504 : 502, performance.now() - waitStart, access(null));
        if (failure === "timeout") return failed(failure, backend.url);
        if (shouldRetry(failure, { method, hasBody, bodyReplayable }, attempt, cfg.retries)) {
          if (!retrying) retrying = deps.retryBudget.take(pool.backends, cfg.retryBudget) || (await roomToRetry(req.signal));
          if (retrying) {
            (tried ??= []).push(backend);
            stats.retries++;
            continue;
          }
          stats.retriesDenied++;
        }
        return failed(failure, backend.url);
      }
      answered = true;
      deadlines.remove(deadline);

      const elapsed = performance.now() - waitStart;
      pool.release(backend);
      pool.observeResponseTime(backend, elapsed);
      const status = upstream.status;
      recordResponse(pool, log, backend, status);
      if (log.access) log.response(method, path, backend.url, status, elapsed, access(lengthOf(upstream.headers.get("content-length"))));
      // Passed on as it came (headers are mutable): only the hop-by-hop ones go.
      stripHopByHop(upstream.headers);
      return upstream;
    }
    } finally {
      if (retrying) deps.retryBudget.release();
    }
  }

  /** Over the retry budget: waits for a retry in flight to end (true: this one is now counted), or the queue timeout. */
  function roomToRetry(signal: AbortSignal): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const waiting = deps.retryBudget.wait(
        () => {
          if (signal.aborted) return resolve(false), true;
          if (!deps.retryBudget.take(pool.backends, cfg.retryBudget)) return false;
          resolve(true);
          return true;
        },
        () => resolve(false),
      );
      if (!waiting) resolve(false);
    });
  }

  /** Waits in the queue until `pick` finds a backend with a free slot, the wait times out, or the client goes. */
  async function slot(pick: () => Member | undefined, signal: AbortSignal): Promise<Member | "full" | "timeout"> {
    let until: number | undefined;
    for (;;) {
      const woke = await new Promise<boolean | "full">((resolve) => {
        if (!deps.queue.wait(() => (resolve(true), true), () => resolve(false), until)) resolve("full");
      });
      if (woke !== true) return woke === "full" ? "full" : "timeout";
      if (signal.aborted) return "timeout";
      const backend = pick();
      if (backend) return backend;
      until ??= performance.now() + cfg.queue.timeout; // waits again at the front (the wake came, someone else took the slot)
    }
  }

  return { handle: proxyRequest, close: () => deadlines.close() };
}

function lengthOf(header: string | null): number | null {
  return header !== null && /^\d+$/.test(header) ? Number(header) : null;
}

