/**
 * An in-memory SharedStore (src/shared-state/store.ts) for unit tests: one
 * `MemoryRedis` is the server, each `store()` a client of it. Expiry follows a
 * fake clock; `down = true` makes every call reject, as a Redis that is away.
 */
import type { SharedStore } from "../../src/shared-state/store.ts";

export class MemoryRedis {
  now = 0;
  down = false;
  readonly #strings = new Map<string, { value: string; expiresAt: number }>();
  readonly #hashes = new Map<string, { fields: Map<string, string>; expiresAt: number }>();
  readonly #listeners = new Map<string, Set<(message: string) => void>>();

  /** A restart without persistence: every key gone. */
  flush(): void {
    this.#strings.clear();
    this.#hashes.clear();
  }

  #live<T extends { expiresAt: number }>(map: Map<string, T>, key: string): T | undefined {
    const entry = map.get(key);
    if (entry && entry.expiresAt <= this.now) map.delete(key);
    return map.get(key);
  }

  store(): SharedStore {
    const server = this;
    const call = async <T>(run: () => T): Promise<T> => {
      if (server.down) throw new Error("Connection closed");
      return run();
    };
    return {
      hgetall: (key) => call(() => Object.fromEntries(server.#live(server.#hashes, key)?.fields ?? [])),
      hset: (key, fields) =>
        call(() => {
          const hash = server.#live(server.#hashes, key) ?? { fields: new Map(), expiresAt: Infinity };
          for (const [k, v] of Object.entries(fields)) hash.fields.set(k, v);
          if (hash.fields.size > 0) server.#hashes.set(key, hash);
        }),
      hdel: (key, fields) =>
        call(() => {
          const hash = server.#live(server.#hashes, key);
          for (const f of fields) hash?.fields.delete(f);
          if (hash && hash.fields.size === 0) server.#hashes.delete(key);
        }),
      setPx: (key, value, ttlMs) => call(() => void server.#strings.set(key, { value, expiresAt: server.now + ttlMs })),
      setNx: (key, value) =>
        call(() => {
          if (server.#live(server.#strings, key)) return false;
          server.#strings.set(key, { value, expiresAt: Infinity });
          return true;
        }),
      pexpire: (key, ttlMs) =>
        call(() => {
          const entry = server.#live(server.#hashes, key) ?? server.#live(server.#strings, key);
          if (entry) entry.expiresAt = server.now + ttlMs;
        }),
      keys: (pattern) =>
        call(() => {
          const re = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")}$`);
          return [...server.#strings.keys(), ...server.#hashes.keys()].filter((k) => re.test(k) && (server.#live(server.#strings, k) ?? server.#live(server.#hashes, k)));
        }),
      mget: (keys) => call(() => keys.map((k) => server.#live(server.#strings, k)?.value ?? null)),
      publish: (channel, message) =>
        call(() => {
          for (const listener of server.#listeners.get(channel) ?? []) queueMicrotask(() => listener(message));
        }),
      subscribe: (channel, listener) =>
        call(() => {
          const set = server.#listeners.get(channel) ?? new Set();
          set.add(listener);
          server.#listeners.set(channel, set);
        }),
      close: () => {},
    };
  }
}
