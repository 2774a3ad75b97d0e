/**
 * Log lines in the SPEC's text format (`INFO: ...`, `HEALTH: ...`,
 * `REQUEST: ...`, `RESPONSE: ...`, `SCALE: ...`) or one JSON object per line.
 * Writes are batched per event-loop turn: access logs at tens of thousands of
 * requests per second must not cost a syscall each.
 */
import type { LogLevel } from "../config/schema.ts";

export type LogTag = "DEBUG" | "INFO" | "WARN" | "ERROR" | "HEALTH" | "REQUEST" | "RESPONSE" | "SCALE" | "INSTANCE";

const LEVEL_RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
const TAG_LEVEL: Record<LogTag, LogLevel> = {
  DEBUG: "debug",
  INFO: "info",
  WARN: "warn",
  ERROR: "error",
  HEALTH: "info",
  REQUEST: "info",
  RESPONSE: "info",
  SCALE: "info",
  INSTANCE: "info",
};

export interface LogOptions {
  readonly level: LogLevel;
  readonly format: "text" | "json";
  readonly access: boolean;
}

type Fields = Record<string, string | number | boolean | null | undefined>;

/** What an access line says beyond the SPEC's form: who asked, which request, how many bytes. */
export interface AccessFacts {
  readonly requestId: string | null;
  /** The client address Fulcrum believes (after `proxy.trustProxy`). */
  readonly client: string;
  /** Request bytes read (head and body; null when the engine cannot tell). */
  readonly bytesIn: number | null;
  /** Response bytes sent (head and body; null when the engine cannot tell). */
  readonly bytesOut: number | null;
}

export interface LogSink {
  write(chunk: string): void;
  flush(): void;
}

function stdoutSink(): LogSink {
  const writer = Bun.stdout.writer();
  return { write: (chunk) => void writer.write(chunk), flush: () => void writer.flush() };
}

export class Logger {
  /** Whether per-request lines are wanted (checked by the proxy before doing any work for them). */
  access = true;
  #minRank = LEVEL_RANK.info;
  #json = false;
  readonly #sink: LogSink;
  #pending = "";
  #flushQueued = false;

  constructor(options: LogOptions, sink: LogSink = stdoutSink()) {
    this.#sink = sink;
    this.configure(options);
  }

  /** New level/format/access settings (config reload). */
  configure(options: LogOptions): void {
    this.#minRank = LEVEL_RANK[options.level];
    this.#json = options.format === "json";
    this.access = options.access && LEVEL_RANK.info >= this.#minRank;
  }

  debug(message: string, fields?: Fields): void {
    this.line("DEBUG", message, fields);
  }
  info(message: string, fields?: Fields): void {
    this.line("INFO", message, fields);
  }
  warn(message: string, fields?: Fields): void {
    this.line("WARN", message, fields);
  }
  error(message: string, fields?: Fields): void {
    this.line("ERROR", message, fields);
  }

  /** `HEALTH: HEALTHY http://localhost:3001 - status: 200` */
  health(healthy: boolean, backend: string, detail: string): void {
    this.line("HEALTH", `${healthy ? "HEALTHY" : "UNHEALTHY"} ${backend} - ${detail}`, { healthy, backend, detail });
  }

  /** `REQUEST: GET / -> http://localhost:3001` */
  request(method: string, path: string, backend: string): void {
    this.line("REQUEST", `${method} ${path} -> ${backend}`, { method, path, backend });
  }

  /**
   * `RESPONSE: GET / <- http://localhost:3001 [200] 12ms`, the SPEC's form, then
   * `512B from 10.0.0.7 id=ab12` when the facts are known. In JSON the fields
   * are request_id, client, method, path, status, backend, duration_ms,
   * bytes_in, bytes_out (docs/operations.md).
   */
  response(method: string, path: string, backend: string, status: number, ms: number, facts?: AccessFacts): void {
    const duration = Math.round(ms);
    const tail = facts ? ` ${facts.bytesOut ?? "-"}B from ${facts.client} id=${facts.requestId ?? "-"}` : "";
    this.line("RESPONSE", `${method} ${path} <- ${backend} [${status}] ${duration}ms${tail}`, {
      request_id: facts?.requestId ?? null,
      client: facts?.client ?? null,
      method,
      path,
      status,
      backend,
      duration_ms: duration,
      bytes_in: facts?.bytesIn ?? null,
      bytes_out: facts?.bytesOut ?? null,
    });
  }

  /** `SCALE: UP 2 -> 3 (avg load 4.20 > 3)` */
  scale(direction: "UP" | "DOWN", from: number, to: number, reason: string): void {
    this.line("SCALE", `${direction} ${from} -> ${to} (${reason})`, { direction, from, to, reason });
  }

  /** A line a managed instance printed, prefixed with its id: `INSTANCE: [i1] listening`. */
  instance(id: string, stream: "stdout" | "stderr", text: string): void {
    this.line("INSTANCE", `[${id}] ${text}`, { instance: id, stream, text });
  }

  line(tag: LogTag, message: string, fields?: Fields): void {
    if (LEVEL_RANK[TAG_LEVEL[tag]] < this.#minRank) return;
    const text = this.#json
      ? `${JSON.stringify({ time: new Date().toISOString(), level: TAG_LEVEL[tag], type: tag.toLowerCase(), msg: message, ...fields })}\n`
      : `${tag}: ${message}\n`;
    this.#pending += text;
    if (this.#pending.length > 65536) this.flush();
    else if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.#flushQueued = false;
    if (this.#pending === "") return;
    const chunk = this.#pending;
    this.#pending = "";
    this.#sink.write(chunk);
    this.#sink.flush();
  }
}
