/**
 * A raw HTTP/1.1 client for tests that must send bytes no well-behaved client
 * would (hostile input, pipelining, conformance corpora): one TCP connection,
 * bytes written and read as latin1 (so "\xff" is one byte), and helpers that
 * split what came back into responses by their framing.
 */
import net from "node:net";

/** One raw TCP connection; bytes are written and read as latin1, so "\xff" is one byte. */
export class RawConn {
  text = "";
  closedByPeer = false;
  #selfClosed = false;
  readonly #socket: net.Socket;
  readonly closed: Promise<void>;
  readonly #wakers = new Set<() => void>();

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", (d: Buffer) => {
      this.text += d.toString("latin1");
      this.#wake();
    });
    this.closed = new Promise((resolve) => {
      const gone = () => {
        if (!this.#selfClosed) this.closedByPeer = true;
        this.#wake();
        resolve();
      };
      socket.on("close", gone);
      socket.on("end", gone);
    });
    socket.on("error", () => {});
  }

  static open(port: number): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: "127.0.0.1", port });
      socket.once("connect", () => resolve(new RawConn(socket)));
      socket.once("error", reject);
    });
  }

  #wake(): void {
    for (const wake of this.#wakers) wake();
  }

  write(data: string | Uint8Array): void {
    if (this.closedByPeer || this.#selfClosed) return;
    this.#socket.write(typeof data === "string" ? Buffer.from(data, "latin1") : data);
  }

  /** Resolves true once `done(text)` holds or the peer closed, false after `timeoutMs`. */
  wait(done: (text: string) => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => {
        if (!done(this.text) && !this.closedByPeer) return;
        finish(true);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      const finish = (value: boolean) => {
        clearTimeout(timer);
        this.#wakers.delete(check);
        resolve(value);
      };
      this.#wakers.add(check);
      check();
    });
  }

  destroy(): void {
    this.#selfClosed = true;
    this.#socket.destroy();
  }
}

export interface Reply {
  text: string;
  /** Statuses of every response in the bytes received. */
  statuses: number[];
  closedByPeer: boolean;
}

/**
 * Sends `payload` on a fresh connection and collects the answer until the peer
 * closes, `until(text)` holds (default: one complete response), or `timeoutMs`.
 */
export async function raw(port: number, payload: string | Uint8Array, options: { timeoutMs?: number; until?: (text: string) => boolean } = {}): Promise<Reply> {
  const conn = await RawConn.open(port);
  conn.write(payload);
  await conn.wait(options.until ?? completeResponse, options.timeoutMs ?? 2000);
  // A peer that answers with `Connection: close` closes right after; give it a moment to be seen.
  if (!conn.closedByPeer) await conn.wait(() => false, 50);
  conn.destroy();
  return { text: conn.text, statuses: statusesOf(conn.text), closedByPeer: conn.closedByPeer };
}

export interface ParsedResponse {
  status: number;
  head: string;
  body: string;
  /** All of it arrived (by Content-Length or chunked framing; unframed bodies run to the close). */
  complete: boolean;
}

/** Splits the bytes received into responses, one after the other, by their framing. */
export function responsesOf(text: string): ParsedResponse[] {
  const out: ParsedResponse[] = [];
  let rest = text;
  while (/^HTTP\/1\.[01] \d{3}/.test(rest)) {
    const status = Number(rest.slice(9, 12));
    const end = rest.indexOf("\r\n\r\n");
    if (end < 0) {
      out.push({ status, head: rest, body: "", complete: false });
      break;
    }
    const head = rest.slice(0, end);
    const after = rest.slice(end + 4);
    const length = head.match(/\r\ncontent-length: *(\d+)/i);
    if ((status >= 100 && status < 200) || status === 204 || status === 304) {
      out.push({ status, head, body: "", complete: true });
      rest = after;
    } else if (length) {
      const n = Number(length[1]);
      out.push({ status, head, body: after.slice(0, n), complete: after.length >= n });
      rest = after.slice(n);
    } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
      const last = after.indexOf("0\r\n\r\n");
      out.push({ status, head, body: last < 0 ? after : after.slice(0, last), complete: last >= 0 });
      rest = last < 0 ? "" : after.slice(last + 5);
    } else {
      // No framing: the body runs to the close. Bun's own error answers have no body at all.
      out.push({ status, head, body: after, complete: !/\r\nconnection: *close/i.test(head) });
      break;
    }
  }
  return out;
}

/** Final (non-1xx) statuses of every response received. */
export function statusesOf(text: string): number[] {
  return responsesOf(text)
    .map((r) => r.status)
    .filter((s) => s >= 200);
}

/** Whether one whole final response has arrived. */
export function completeResponse(text: string): boolean {
  return responsesOf(text).some((r) => r.status >= 200 && r.complete);
}

/** Body of the first final response. */
export function bodyOf(text: string): string {
  return responsesOf(text).find((r) => r.status >= 200)?.body ?? "";
}

/** A refusal: a 4xx, 501 or 505 — the answer of a front end that understood the request was bad. */
export const isRefusal = (status: number) => (status >= 400 && status < 500) || status === 501 || status === 505;

/** Refused (only refusals answered) or closed without a byte. */
export function refusedOrClosed(reply: Reply): boolean {
  if (reply.statuses.length === 0) return reply.text === "" && reply.closedByPeer;
  return reply.statuses.every(isRefusal);
}

/** One line describing a reply, for readable failure diffs. */
export function describeReply(reply: Reply): string {
  if (reply.statuses.length === 0) return reply.closedByPeer ? (reply.text ? `closed after ${JSON.stringify(reply.text.slice(0, 60))}` : "closed, no bytes") : "no answer, still open";
  return `status ${reply.statuses.join(",")}`;
}

