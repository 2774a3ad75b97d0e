/**
 * Shared by the bench scripts: flags, and child processes that are waited on
 * until they print a line and killed by PID at exit (or on Ctrl-C).
 */
import type { Subprocess } from "bun";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "..");

/** `--name value` from the command line, or `fallback`. */
export function arg(name: string, fallback: string): string {
  const i = Bun.argv.indexOf(`--${name}`);
  return i >= 0 ? (Bun.argv[i + 1] ?? fallback) : fallback;
}

const started: Subprocess[] = [];

/** Kills every process started here that is still running. */
export function cleanup(): void {
  for (const p of started) if (p.exitCode === null) p.kill("SIGKILL");
}

/** Ctrl-C kills what was started here; installed by the first spawn (the harness, which has its own, never spawns here). */
function record(proc: Subprocess): void {
  if (started.length === 0) {
    process.on("SIGINT", () => {
      cleanup();
      process.exit(130);
    });
  }
  started.push(proc);
}

/** Starts `cmd` in the project root and resolves once its stdout matches `pattern` (15 s at most). */
export async function spawnUntil(cmd: string[], pattern: RegExp, env: Record<string, string> = {}): Promise<{ proc: Subprocess; match: RegExpMatchArray }> {
  const proc = Bun.spawn(cmd, { cwd: ROOT, stdout: "pipe", stderr: "inherit", env: { ...process.env, ...env } });
  record(proc);
  const decoder = new TextDecoder();
  let text = "";
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  const deadline = performance.now() + 15_000;
  while (performance.now() < deadline) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value);
    const match = text.match(pattern);
    if (match) {
      void (async () => {
        while (!(await reader.read()).done); // keep draining so the child never blocks on stdout
      })();
      return { proc, match };
    }
  }
  throw new Error(`${cmd.join(" ")} did not print ${pattern}:\n${text}`);
}

/** Starts `cmd` in the project root (output ignored) and records it for `cleanup()`. */
export function spawnQuiet(cmd: string[]): Subprocess {
  const proc = Bun.spawn(cmd, { cwd: ROOT, stdin: "ignore", stdout: "ignore", stderr: "inherit" });
  record(proc);
  return proc;
}

/** A free ephemeral port on 127.0.0.1 (bound, read, released). */
export function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

/** Resolves once `url` answers 200 (polled every 100 ms, at most `timeoutMs`). */
export async function waitHttp(url: string, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = "";
  for (let i = 0; i < 400 && performance.now() < deadline; i++) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.ok) return;
      last = `status ${res.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await Bun.sleep(100);
  }
  throw new Error(`${what} did not answer 200 at ${url} within ${timeoutMs} ms (${last})`);
}

/**
 * Resolves with the first value `check` returns (it is asked now and on every
 * wake: the caller calls each function in `waiters` when its output grows);
 * `check` may throw to reject. Rejects with `timedOut()` after `timeoutMs`.
 */
export function untilWoken<T>(waiters: Set<() => void>, check: () => T | undefined, timeoutMs: number, timedOut: () => Error): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    const done = () => {
      clearTimeout(timer);
      waiters.delete(wake);
    };
    const wake = () => {
      try {
        const value = check();
        if (value === undefined) return;
        done();
        resolvePromise(value);
      } catch (error) {
        done();
        reject(error);
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(timedOut());
    }, timeoutMs);
    waiters.add(wake);
    wake();
  });
}

/** Fields of /proc/PID/stat after the command name: [0] = state, [1] = ppid, [2] = pgrp, [11]/[12] = utime/stime, [19] = start time; undefined once it is gone. */
export function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

