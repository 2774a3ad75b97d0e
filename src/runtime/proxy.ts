/**
 * The HTTP proxy: pick a backend, stream the request to it with `fetch()`,
 * stream the answer back. Retries connection failures on another backend when
 * that is safe, and turns "no backend", "no answer", "too slow" into 503, 502, 504.
 * Bodies are never buffered (small idempotent bodies excepted, so they can be
 * retried) and never decoded (`decompress: false`).
 */
import type { ResolvedConfig } from "../config/schema.ts";
import { forwardRequestHeaders, forwardResponseHeaders } from "../decide/headers.ts";
import { warmupShare } from "../decide/slowstart.ts";
import { classifyFetchError, countsAsFailure, isIdempotent, shouldRetry, type UpstreamFailure } from "../decide/retry.ts";
import type { BackendView, PickContext, Strategy } from "../types.ts";
import type { Logger } from "./log.ts";
import type { Member, Pool } from "./pool.ts";
import { describeFailure } from "./prober.ts";

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
  /** Slow-start period of new managed instances, ms. */
  readonly slowStart: number;
}

export type ProxyHandler = (req: Request, peerIp: string) => Promise<Response>;

export function createProxy(deps: ProxyDeps): ProxyHandler {
  const { pool, strategy, log, proxy: cfg } = deps;
  const proto = deps.tls ? "https" : "http";
  const newRequestId = () => crypto.randomUUID();

  const unavailable = () =>
    new Response("503 Service Unavailable: no healthy backend\n", {
      status: 503,
      headers: { "retry-after": String(deps.retryAfterSeconds), "content-type": "text/plain" },
    });
  const failed = (status: 502 | 504, detail: string) =>
    new Response(`${status} ${status === 502 ? "Bad Gateway" : "Gateway Timeout"}: ${detail}\n`, {
      status,
      headers: { "content-type": "text/plain" },
    });

  return async function proxyRequest(req: Request, peerIp: string): Promise<Response> {
    const url = req.url;
    const pathStart = url.indexOf("/", url.indexOf("//") + 2);
    const path = pathStart < 0 ? "/" : url.slice(pathStart);
    const method = req.method;
    const ctx: PickContext = { clientIp: deps.clientIp(peerIp, req), header: (name) => req.headers.get(name) };

    const headers = forwardRequestHeaders(req.headers, {
      peerIp,
      peerTrusted: cfg.trustProxy !== false && deps.isTrusted(peerIp),
      proto,
      upstreamHost: "",
      preserveHost: cfg.preserveHost,
      newRequestId,
    });

    // GET and HEAD bodies are dropped (fetch refuses them, and no backend should act on them).
    let body: ReadableStream | ArrayBuffer | null = method === "GET" || method === "HEAD" ? null : req.body;
    const hasBody = body !== null && req.headers.get("content-length") !== "0";
    let bodyReplayable = !hasBody;
    if (hasBody && isIdempotent(method)) {
      const length = Number(req.headers.get("content-length"));
      if (length > 0 && length <= REPLAYABLE_BODY_LIMIT) {
        body = await req.arrayBuffer();
        bodyReplayable = true;
      }
    }

    let tried: Member[] | undefined;
    for (let attempt = 0; ; attempt++) {
      let backend = pick(strategy, pool.backends, ctx, tried, deps.slowStart);
      // Nothing ready on the first try: scaled to zero or (re)starting. Wait for an instance once.
      if (!backend && !tried && deps.coldStart && (await deps.coldStart())) backend = pick(strategy, pool.backends, ctx, tried, deps.slowStart);
      if (!backend) return tried ? failed(502, "every backend tried failed") : unavailable();
      if (!cfg.preserveHost || !req.headers.has("host")) headers.set("host", backend.host);
      if (log.access) log.request(method, path, backend.url);

      const started = performance.now();
      backend.inflight++;
      backend.totalRequests++;
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(new DOMException("response timeout", "TimeoutError")), cfg.responseTimeout);
      const onClientGone = () => abort.abort();
      req.signal.addEventListener("abort", onClientGone, { once: true });

      let upstream: Response;
      try {
        upstream = await fetch(backend.url + path, {
          method,
          headers,
          body,
          redirect: "manual",
          decompress: false,
          signal: abort.signal,
        });
      } catch (error) {
        clearTimeout(timer);
        backend.inflight--;
        const failure: UpstreamFailure = req.signal.aborted ? "aborted" : classifyFetchError(error);
        if (failure === "aborted") return failed(502, "client went away"); // nobody reads this
        backend.failedRequests++;
        if (pool.recordOutcome(backend, true, Date.now())) log.warn(`${backend.url} ejected after consecutive failures`);
        const detail = describeFailure(failure, cfg.responseTimeout);
        if (log.access) log.response(method, path, backend.url, failure === "timeout" ? 504 : 502, performance.now() - started);
        if (failure === "timeout") return failed(504, `${backend.url}: ${detail}`);
        if (shouldRetry(failure, { method, hasBody, bodyReplayable }, attempt, cfg.retries)) {
          (tried ??= []).push(backend);
          continue;
        }
        return failed(502, `${backend.url}: ${detail}`);
      }
      clearTimeout(timer);

      const elapsed = performance.now() - started;
      backend.inflight--;
      pool.observeResponseTime(backend, elapsed);
      const status = upstream.status;
      if (countsAsFailure(status)) backend.failedRequests++;
      if (pool.recordOutcome(backend, countsAsFailure(status), Date.now())) log.warn(`${backend.url} ejected after consecutive failures`);
      if (log.access) log.response(method, path, backend.url, status, elapsed);

      return new Response(upstream.body, {
        status,
        statusText: upstream.statusText,
        headers: forwardResponseHeaders(upstream.headers),
      });
    }
  };
}

function pick(
  strategy: Strategy,
  pool: readonly Member[],
  ctx: PickContext,
  tried: readonly Member[] | undefined,
  slowStart: number,
): Member | undefined {
  const candidates = tried ? pool.filter((m) => !tried.includes(m)) : pool;
  const chosen = strategy.pick(candidates, ctx) as (BackendView & Member) | undefined;
  if (chosen === undefined || chosen.warmUntil === 0) return chosen;
  // Slow start: a warming instance keeps only its growing share; the rest goes elsewhere.
  const msLeft = chosen.warmUntil - Date.now();
  if (msLeft <= 0) {
    chosen.warmUntil = 0;
    return chosen;
  }
  if (Math.random() < warmupShare(msLeft, slowStart)) return chosen;
  // Divert to an instance that is already warm; among warming ones there is nothing to protect.
  const warm = candidates.filter((m) => m.warmUntil === 0 || m.warmUntil <= Date.now());
  return warm.length > 0 ? ((strategy.pick(warm, ctx) as Member | undefined) ?? chosen) : chosen;
}
