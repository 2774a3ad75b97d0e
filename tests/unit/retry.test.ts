import { describe, expect, test } from "bun:test";
import { classifyFetchError, retryDelayMs, shouldRetry } from "../../src/decide/retry.ts";

describe("upstream failures", () => {
  test("classifies Bun's fetch errors", () => {
    expect(classifyFetchError({ name: "TypeError", code: "ECONNREFUSED" })).toBe("refused");
    expect(classifyFetchError({ name: "TypeError", code: "ECONNRESET" })).toBe("reset");
    expect(classifyFetchError({ name: "TimeoutError" })).toBe("timeout");
    expect(classifyFetchError({ name: "AbortError" })).toBe("aborted");
    expect(classifyFetchError({ name: "TypeError", code: "ENOTFOUND" })).toBe("unresolved");
    expect(classifyFetchError(new Error("?"))).toBe("other");
  });
});

describe("retry rules", () => {
  const get = { method: "GET", hasBody: false, bodyReplayable: true };
  test("a refused or reset GET is retried up to `retries` times", () => {
    expect(shouldRetry("refused", get, 0, 2)).toBe(true);
    expect(shouldRetry("reset", get, 1, 2)).toBe(true);
    expect(shouldRetry("refused", get, 2, 2)).toBe(false);
  });
  test("a timeout is not retried (the backend may be working on it)", () => {
    expect(shouldRetry("timeout", get, 0, 2)).toBe(false);
  });
  test("a POST with a body is not retried; a bodiless POST is", () => {
    expect(shouldRetry("refused", { method: "POST", hasBody: true, bodyReplayable: true }, 0, 2)).toBe(false);
    expect(shouldRetry("refused", { method: "POST", hasBody: false, bodyReplayable: true }, 0, 2)).toBe(true);
  });
  test("a PUT is retried only when its body can be sent again", () => {
    expect(shouldRetry("reset", { method: "PUT", hasBody: true, bodyReplayable: true }, 0, 2)).toBe(true);
    expect(shouldRetry("reset", { method: "PUT", hasBody: true, bodyReplayable: false }, 0, 2)).toBe(false);
  });
});

describe("retry backoff", () => {
  test("the first retry goes to another backend at once", () => {
    expect(retryDelayMs(1, () => 0.99)).toBe(0);
  });
  test("later retries wait a jittered, doubling delay", () => {
    expect(retryDelayMs(2, () => 0.99)).toBe(24);
    expect(retryDelayMs(3, () => 0.99)).toBe(49);
    expect(retryDelayMs(3, () => 0)).toBe(0);
  });
});
