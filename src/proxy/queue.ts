/**
 * Requests waiting for a slot (HAProxy's `maxconn` queue with `timeout queue`,
 * Envoy's `max_pending_requests`): when every backend that would take a
 * request is at its `maxConnections`, the request waits here, first in first
 * out, at most `proxy.queue.size` of them, each at most `proxy.queue.timeout`.
 * A freed slot wakes the oldest waiter, which tries to pick a backend again
 * (and waits again, at the front, if another request got there first); a
 * timer also wakes the oldest now and then, for slots that appear another way
 * (a backend added, one healthy again). Waiters count as load for autoscaling.
 */

export interface Waiter {
  /** A slot may be free: try again; false when it found none (it goes back to the front). */
  readonly wake: () => boolean;
  /** The wait lasted `timeout`: answer 503. */
  readonly expire: () => void;
  /** performance.now() after which it expires. */
  readonly until: number;
}

const TICK_MS = 50;

export class SlotQueue {
  #waiters: Waiter[] = [];
  #size: number;
  #timeout: number;
  #timer: Timer | undefined;

  constructor(options: { readonly size: number; readonly timeout: number }) {
    this.#size = options.size;
    this.#timeout = options.timeout;
  }

  /** New limits (config reload); waiters keep their deadlines. */
  configure(options: { readonly size: number; readonly timeout: number }): void {
    this.#size = options.size;
    this.#timeout = options.timeout;
  }

  get length(): number {
    return this.#waiters.length;
  }

  /**
   * Queues a request; false when the queue is full (the caller answers 503 at
   * once). `until`: a deadline kept from an earlier wait (the serve engine
   * waits again after a wake that found the slot taken).
   */
  wait(wake: () => boolean, expire: () => void, until?: number): boolean {
    if (until === undefined && this.#waiters.length >= this.#size) return false;
    const waiter = { wake, expire, until: until ?? performance.now() + this.#timeout };
    if (until === undefined) this.#waiters.push(waiter);
    else this.#waiters.unshift(waiter);
    this.#arm();
    return true;
  }

  /** A slot is free: the oldest waiter tries again, and stays first if it found none. */
  wakeOne(): void {
    const waiter = this.#waiters.shift();
    if (waiter && !waiter.wake()) this.#waiters.unshift(waiter);
  }

  /** Every waiter gives up now (shutdown). */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const waiter of this.#waiters.splice(0)) waiter.expire();
  }

  #arm(): void {
    this.#timer ??= setInterval(() => this.#tick(), TICK_MS);
  }

  #tick(): void {
    const now = performance.now();
    while (this.#waiters.length > 0 && (this.#waiters[0] as Waiter).until <= now) (this.#waiters.shift() as Waiter).expire();
    // Deadlines are not in order after a waitAgain: expire any that passed.
    if (this.#waiters.some((w) => w.until <= now)) {
      const expired = this.#waiters.filter((w) => w.until <= now);
      this.#waiters = this.#waiters.filter((w) => w.until > now);
      for (const waiter of expired) waiter.expire();
    }
    if (this.#waiters.length > 0) this.wakeOne();
    else {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}
