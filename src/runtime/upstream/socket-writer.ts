/**
 * Ordered writes to a Bun socket: what the kernel does not take at once is
 * queued and written on `drain`, so bytes never reorder, and a caller can wait
 * for the queue to empty before producing more (request body backpressure).
 */
import type { Socket } from "bun";

// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

export class SocketWriter {
  #socket: Socket<unknown> | undefined;
  #pending: Uint8Array[] = [];
  #waiters: (() => void)[] = [];

  attach(socket: Socket<unknown>): void {
    this.#socket = socket;
  }

  /** Writes `data` or queues what did not fit; false means "wait for `drained()` before writing more". */
  write(data: string | Uint8Array): boolean {
    const socket = this.#socket;
    if (!socket) return true;
    // Header values are latin1; an ASCII string is the same bytes in UTF-8, so it can go as it is.
    const bytes = typeof data === "string" && NON_ASCII.test(data) ? Buffer.from(data, "latin1") : data;
    if (this.#pending.length > 0) {
      this.#pending.push(typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes);
      return false;
    }
    const written = socket.write(bytes);
    const length = typeof bytes === "string" ? bytes.length : bytes.byteLength;
    if (written === length || written < 0) return true; // all taken, or closed (the close handler reports that)
    const rest = typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes;
    this.#pending.push(rest.subarray(written));
    return false;
  }

  /** Resolves once everything queued has been written (or the socket is gone). */
  drained(): Promise<void> {
    if (this.#pending.length === 0 || !this.#socket) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** The socket's drain handler: write what is queued, then wake the waiters. */
  onDrain(): void {
    const socket = this.#socket;
    while (socket && this.#pending.length > 0) {
      const next = this.#pending[0] as Uint8Array;
      const written = socket.write(next);
      if (written < 0) break;
      if (written < next.byteLength) {
        this.#pending[0] = next.subarray(written);
        return;
      }
      this.#pending.shift();
    }
    this.#wake();
  }

  /** The socket closed: nothing more will be written; let waiters go on (they check the connection). */
  detach(): void {
    this.#socket = undefined;
    this.#pending = [];
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
