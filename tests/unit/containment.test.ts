/**
 * Containment decisions: backends at their maxConnections are skipped, a
 * request waits only when a slot would free up, the wait queue is first in
 * first out with a size and a timeout, and the retry budget caps retries in
 * flight.
 */
import { describe, expect, test } from "bun:test";
import { SlotQueue } from "../../src/proxy/queue.ts";
import { RetryBudget } from "../../src/proxy/retry-budget.ts";
import { selectBackend, waitForSlot } from "../../src/proxy/select.ts";
import { RoundRobin } from "../../src/strategies/round-robin.ts";
import { backend, ctx } from "../helpers/backends.ts";

describe("maxConnections in selection", () => {
  test("a backend at its limit is skipped while another has room", () => {
    const full = backend("a", { slots: 2, inflight: 2 });
    const room = backend("b", { slots: 2, inflight: 1 });
    const rr = new RoundRobin();
    expect(Array.from({ length: 4 }, () => selectBackend(rr, [full, room], ctx(), undefined, true)?.id)).toEqual(["b", "b", "b", "b"]);
  });

  test("every backend full: nothing picked, and the request may wait for a slot", () => {
    const pool = [backend("a", { slots: 1, inflight: 1 }), backend("b", { slots: 3, inflight: 3 })];
    expect(selectBackend(new RoundRobin(), pool, ctx(), undefined, true)).toBeUndefined();
    expect(waitForSlot(pool, undefined)).toBe(true);
  });

  test("nothing healthy at all: no waiting (the answer is 503 at once)", () => {
    const pool = [backend("a", { slots: 1, inflight: 1, state: "unhealthy", available: false })];
    expect(waitForSlot(pool, undefined)).toBe(false);
  });

  test("backends without a limit are never full", () => {
    expect(selectBackend(new RoundRobin(), [backend("a", { inflight: 1000 })], ctx(), undefined, true)?.id).toBe("a");
  });
});

describe("the slot queue", () => {
  test("first in, first out; a full queue refuses at once", () => {
    const queue = new SlotQueue({ size: 2, timeout: 10_000 });
    const woken: string[] = [];
    expect(queue.wait(() => (woken.push("first"), true), () => {})).toBe(true);
    expect(queue.wait(() => (woken.push("second"), true), () => {})).toBe(true);
    expect(queue.wait(() => true, () => {})).toBe(false);
    queue.wakeOne();
    queue.wakeOne();
    expect(woken).toEqual(["first", "second"]);
    queue.close();
  });

  test("a woken waiter that found no slot stays first", () => {
    const queue = new SlotQueue({ size: 5, timeout: 10_000 });
    let tries = 0;
    const order: string[] = [];
    queue.wait(() => (order.push(`a${++tries}`), tries >= 2), () => {});
    queue.wait(() => (order.push("b"), true), () => {});
    queue.wakeOne(); // a finds nothing: back to the front
    queue.wakeOne(); // a again, gets it
    queue.wakeOne(); // then b
    expect(order).toEqual(["a1", "a2", "b"]);
    queue.close();
  });

  test("a waiter expires after the timeout", async () => {
    const queue = new SlotQueue({ size: 5, timeout: 60 });
    let expired = 0;
    queue.wait(() => false, () => expired++);
    await Bun.sleep(200);
    expect(expired).toBe(1);
    expect(queue.length).toBe(0);
  });
});

describe("the retry budget", () => {
  const queue = { size: 10, timeout: 80 };

  test("at most max(min, ratio × in flight) retries in flight", () => {
    const budget = new RetryBudget(queue);
    const pool = [backend("a", { inflight: 50 })]; // 20% of 50: 10
    const taken = Array.from({ length: 15 }, () => budget.take(pool, { ratio: 0.2, min: 3 })).filter(Boolean).length;
    expect(taken).toBe(10);
    expect(budget.inFlight).toBe(10);
  });

  test("a quiet pool still gets `min` retries", () => {
    const budget = new RetryBudget(queue);
    const taken = Array.from({ length: 5 }, () => budget.take([backend("a", { inflight: 1 })], { ratio: 0.2, min: 3 })).filter(Boolean).length;
    expect(taken).toBe(3);
  });

  test("a retry over the budget goes when one in flight ends, in arrival order", () => {
    const budget = new RetryBudget(queue);
    const pool = [backend("a", { inflight: 1 })];
    const limits = { ratio: 0, min: 1 };
    expect(budget.take(pool, limits)).toBe(true);
    const order: string[] = [];
    for (const name of ["first", "second"]) {
      budget.wait(() => (budget.take(pool, limits) ? (order.push(name), true) : false), () => order.push(`${name} expired`));
    }
    expect(order).toEqual([]);
    budget.release();
    expect(order).toEqual(["first"]);
    budget.release();
    expect(order).toEqual(["first", "second"]);
    budget.close();
  });

  test("a retry that finds no room within the queue timeout gives up", async () => {
    const budget = new RetryBudget(queue);
    const pool = [backend("a", { inflight: 1 })];
    expect(budget.take(pool, { ratio: 0, min: 1 })).toBe(true);
    let expired = 0;
    budget.wait(() => budget.take(pool, { ratio: 0, min: 1 }), () => expired++);
    await Bun.sleep(250);
    expect(expired).toBe(1);
    expect(budget.inFlight).toBe(1);
  });
});
