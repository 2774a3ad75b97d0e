/**
 * A backend on raw TCP that records the bytes of every request exactly as
 * Fulcrum forwards them (target, fields, body), split with the listen
 * engine's own parser, and answers each complete one with `200 recorded`.
 * Bun.serve would normalise the target and drop a GET's body; this does not.
 */
import { splitMessages, type ParsedMessage } from "./http1-messages.ts";

export interface RawRecorder {
  readonly port: number;
  readonly url: string;
  /** Every complete request received, in order (health probes included). */
  readonly arrived: ParsedMessage[];
  /** Requests that started (head complete) but whose body never completed. */
  readonly incomplete: () => ParsedMessage[];
  stop(): void;
}

export function startRawRecorder(): RawRecorder {
  const arrived: ParsedMessage[] = [];
  const open = new Set<{ bytes: Buffer; answered: number }>();
  const listener = Bun.listen<{ bytes: Buffer; answered: number }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        socket.data = { bytes: Buffer.alloc(0), answered: 0 };
        open.add(socket.data);
      },
      data(socket, chunk) {
        const state = socket.data;
        state.bytes = Buffer.concat([state.bytes, chunk]);
        const messages = splitMessages(state.bytes, { requireHost: false }).messages.filter((m) => m.complete);
        for (const m of messages.slice(state.answered)) {
          arrived.push(m);
          socket.write("HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nrecorded");
        }
        state.answered = messages.length;
      },
      close(socket) {
        open.delete(socket.data);
      },
    },
  });
  return {
    port: listener.port,
    url: `http://127.0.0.1:${listener.port}`,
    arrived,
    incomplete: () => [...open].flatMap((s) => splitMessages(s.bytes, { requireHost: false }).messages.filter((m) => !m.complete)),
    stop: () => listener.stop(true),
  };
}
