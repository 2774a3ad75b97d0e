/**
 * Response timeouts for every request in flight, checked by one shared timer
 * instead of a setTimeout per request (measured: a per-request timer and its
 * cancellation are a visible share of the proxy's CPU per request). Precision
 * is one tick, a tenth of the timeout at most.
 */
export interface Deadline {
  /** performance.now() after which `onExpire` runs. */
  at: number;
  readonly onExpire: () => void;
}

export class Deadlines {
  readonly #pending = new Set<Deadline>();
  readonly #timer: Timer;

  constructor(tickMs: number) {
    this.#timer = setInterval(() => this.#sweep(), Math.max(10, tickMs));
    this.#timer.unref();
  }

  add(deadline: Deadline): void {
    this.#pending.add(deadline);
  }

  remove(deadline: Deadline): void {
    this.#pending.delete(deadline);
  }

  close(): void {
    clearInterval(this.#timer);
    this.#pending.clear();
  }

  #sweep(): void {
    const now = performance.now();
    for (const deadline of this.#pending) {
      if (now < deadline.at) continue;
      this.#pending.delete(deadline);
      deadline.onExpire();
    }
  }
}
