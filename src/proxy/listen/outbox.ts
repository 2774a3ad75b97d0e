/**
 * Ordered writes to one Bun socket. Bun's `socket.write` takes what the kernel
 * takes and returns how much that was (it does not buffer: oven-sh/bun#40930);
 * the rest is queued here and written on `drain`, so bytes never reorder. A
 * write that had to queue returns false: the caller pauses whatever feeds it
 * and resumes when its owner hears `onOutboxDrained` (backpressure without a
 * promise per write).
 */
import type { Socket } from "bun";
import type { EdgeStats } from "../../runtime/outcomes.ts";

// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

/** The shared assembly buffer of writeAssembled (grows to the largest head plus first body bytes). */
let scratch = Buffer.allocUnsafe(16 * 1024);

/** Told when everything queued has gone out. */
export interface OutboxOwner {
  onOutboxDrained(): void;
}

/** No queue: shared by every outbox that has nothing waiting (most, most of the time). */
const EMPTY: Uint8Array[] = [];

export class Outbox {
  #socket: Socket<unknown> | undefined;
  #queue: Uint8Array[] = EMPTY;
  readonly #owner: OutboxOwner;
  /** Edge counters to add the bytes written to (client connections only). */
  readonly #stats: EdgeStats | undefined;

  constructor(owner: OutboxOwner, stats?: EdgeStats) {
    this.#owner = owner;
    this.#stats = stats;
  }

  attach(socket: Socket<unknown>): void {
    this.#socket = socket;
  }

  get empty(): boolean {
    return this.#queue.length === 0;
  }

  #enqueue(bytes: Uint8Array): void {
    if (this.#queue === EMPTY) this.#queue = [];
    this.#queue.push(bytes);
  }

  /** Writes or queues `data` (a string is written as latin1 bytes); false when something is queued. */
  write(data: string | Uint8Array): boolean {
    const socket = this.#socket;
    if (!socket) return true;
    // An ASCII string is the same bytes in UTF-8 (what Bun writes strings as); others go as latin1 bytes.
    const bytes = typeof data === "string" && NON_ASCII.test(data) ? Buffer.from(data, "latin1") : data;
    if (this.#stats) this.#stats.bytesOut += typeof bytes === "string" ? bytes.length : bytes.byteLength;
    if (this.#queue.length > 0) {
      this.#enqueue(typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes);
      return false;
    }
    const written = socket.write(bytes);
    const length = typeof bytes === "string" ? bytes.length : bytes.byteLength;
    if (written >= length || written < 0) return true; // all taken, or closed (the close handler says so)
    const rest = typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes;
    this.#enqueue(rest.subarray(written));
    return false;
  }

  /**
   * Writes `head` (latin1) followed by `parts` in one write, assembled in a
   * buffer shared by every connection of the process instead of a fresh one
   * per call (Bun would also encode a string into a new native buffer each
   * time: that churn, not the JS heap, is most of Fulcrum's memory under
   * load). Only what the kernel does not take at once is copied, into the queue.
   */
  writeAssembled(head: string, parts: readonly Uint8Array[] = []): boolean {
    let length = head.length;
    for (const part of parts) length += part.byteLength;
    if (scratch.byteLength < length) scratch = Buffer.allocUnsafe(Math.max(length, scratch.byteLength * 2));
    let at = head.length > 0 ? scratch.write(head, 0, "latin1") : 0;
    for (const part of parts) {
      scratch.set(part, at);
      at += part.byteLength;
    }
    if (this.#stats) this.#stats.bytesOut += at;
    const socket = this.#socket;
    if (!socket) return true;
    if (this.#queue.length > 0) {
      this.#enqueue(Buffer.from(scratch.subarray(0, at)));
      return false;
    }
    const written = socket.write(scratch, 0, at);
    if (written >= at || written < 0) return true;
    this.#enqueue(Buffer.from(scratch.subarray(written, at)));
    return false;
  }

  /** The socket's drain handler: writes what is queued; tells the owner once it is all out. */
  onDrain(): void {
    const socket = this.#socket;
    while (socket && this.#queue.length > 0) {
      const next = this.#queue[0] as Uint8Array;
      const written = socket.write(next);
      if (written < 0) break;
      if (written < next.byteLength) {
        this.#queue[0] = next.subarray(written);
        return;
      }
      this.#queue.shift();
    }
    this.#queue = EMPTY;
    this.#owner.onOutboxDrained();
  }

  /** The socket is gone: nothing more is written. */
  detach(): void {
    this.#socket = undefined;
    this.#queue = EMPTY;
  }
}
