/**
 * The few Redis operations the shared state needs, behind an interface so the
 * sync logic is tested against an in-memory fake (tests/helpers/memory-store.ts)
 * as well as a real redis-server. Every method rejects when Redis cannot
 * answer within COMMAND_TIMEOUT_MS; the caller decides what that means.
 */
import { RedisClient } from "bun";

export interface SharedStore {
  hgetall(key: string): Promise<Record<string, string>>;
  hset(key: string, fields: Record<string, string>): Promise<void>;
  hdel(key: string, fields: readonly string[]): Promise<void>;
  /** SET with an expiry (ms). */
  setPx(key: string, value: string, ttlMs: number): Promise<void>;
  /** SET only when absent; true when it was set. */
  setNx(key: string, value: string): Promise<boolean>;
  pexpire(key: string, ttlMs: number): Promise<void>;
  /** Keys matching a glob pattern (SCAN, never KEYS). */
  keys(pattern: string): Promise<string[]>;
  mget(keys: readonly string[]): Promise<(string | null)[]>;
  publish(channel: string, message: string): Promise<void>;
  /** Calls `listener` for each message; survives reconnects (re-subscribes). */
  subscribe(channel: string, listener: (message: string) => void): Promise<void>;
  close(): void;
}

/** A Redis slower than this counts as down for that operation. */
const COMMAND_TIMEOUT_MS = 1000;
/** Between two reconnect attempts while Redis is away (Bun gives up after its own retries). */
const RECONNECT_EVERY_MS = 1000;

export class RedisStore implements SharedStore {
  readonly #url: string;
  #client: RedisClient;
  #subscriber: RedisClient | undefined;
  readonly #subscriptions = new Map<string, (message: string) => void>();
  #lastConnectAttempt = Number.NEGATIVE_INFINITY;
  /** The connection being made: every command waits for the same one. */
  #connecting: Promise<void> | undefined;
  #closed = false;

  constructor(url: string) {
    this.#url = url;
    this.#client = this.#newClient();
  }

  #newClient(): RedisClient {
    // No offline queue: while Redis is away, commands fail at once instead of piling up.
    return new RedisClient(this.#url, { enableOfflineQueue: false, autoReconnect: true, connectionTimeout: COMMAND_TIMEOUT_MS });
  }

  async #command(cmd: string, args: string[]): Promise<unknown> {
    if (this.#closed) throw new Error("closed");
    if (!this.#client.connected) await this.#reconnect();
    return withTimeout(this.#client.send(cmd, args), COMMAND_TIMEOUT_MS);
  }

  /** At most one attempt per RECONNECT_EVERY_MS; a fresh client, since Bun's gives up after its retries. */
  #reconnect(): Promise<void> {
    if (this.#connecting) return this.#connecting;
    const now = performance.now();
    if (now - this.#lastConnectAttempt < RECONNECT_EVERY_MS) return Promise.reject(new Error("Redis is not connected"));
    this.#lastConnectAttempt = now;
    this.#client.close();
    this.#client = this.#newClient();
    this.#connecting = (async () => {
      await withTimeout(this.#client.connect(), COMMAND_TIMEOUT_MS);
      if (this.#subscriptions.size > 0) await this.#resubscribe();
    })().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #resubscribe(): Promise<void> {
    this.#subscriber?.close();
    const subscriber = this.#newClient();
    this.#subscriber = subscriber;
    await withTimeout(subscriber.connect(), COMMAND_TIMEOUT_MS);
    for (const [channel, listener] of this.#subscriptions) await withTimeout(subscriber.subscribe(channel, listener), COMMAND_TIMEOUT_MS);
  }

  async hgetall(key: string): Promise<Record<string, string>> {
    const reply = await this.#command("HGETALL", [key]);
    if (Array.isArray(reply)) {
      const out: Record<string, string> = {};
      for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1]);
      return out;
    }
    return (reply ?? {}) as Record<string, string>;
  }

  async hset(key: string, fields: Record<string, string>): Promise<void> {
    const flat = Object.entries(fields).flat();
    if (flat.length > 0) await this.#command("HSET", [key, ...flat]);
  }

  async hdel(key: string, fields: readonly string[]): Promise<void> {
    if (fields.length > 0) await this.#command("HDEL", [key, ...fields]);
  }

  async setPx(key: string, value: string, ttlMs: number): Promise<void> {
    await this.#command("SET", [key, value, "PX", String(Math.max(1, Math.round(ttlMs)))]);
  }

  async setNx(key: string, value: string): Promise<boolean> {
    return (await this.#command("SET", [key, value, "NX"])) !== null;
  }

  async pexpire(key: string, ttlMs: number): Promise<void> {
    await this.#command("PEXPIRE", [key, String(Math.max(1, Math.round(ttlMs)))]);
  }

  async keys(pattern: string): Promise<string[]> {
    const found: string[] = [];
    let cursor = "0";
    // Bounded: a namespace holds a few keys per node; 100 pages is far beyond that.
    for (let page = 0; page < 100; page++) {
      const [next, batch] = (await this.#command("SCAN", [cursor, "MATCH", pattern, "COUNT", "100"])) as [string, string[]];
      found.push(...batch);
      cursor = String(next);
      if (cursor === "0") break;
    }
    return found;
  }

  async mget(keys: readonly string[]): Promise<(string | null)[]> {
    if (keys.length === 0) return [];
    return ((await this.#command("MGET", [...keys])) as (string | null)[]).map((v) => (v === null ? null : String(v)));
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.#command("PUBLISH", [channel, message]);
  }

  async subscribe(channel: string, listener: (message: string) => void): Promise<void> {
    this.#subscriptions.set(channel, listener);
    if (!this.#client.connected) await this.#reconnect(); // subscribes once connected
    else await this.#resubscribe();
  }

  close(): void {
    this.#closed = true;
    this.#client.close();
    this.#subscriber?.close();
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: Timer | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
