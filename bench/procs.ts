/**
 * Shared by the bench scripts: flags, and child processes that are waited on
 * until they print a line and killed by PID at exit (or on Ctrl-C).
 */
import type { Subprocess } from "bun";
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
process.on("SIGINT", () => {
  cleanup();
  process.exit(130);
});

/** Starts `cmd` in the project root and resolves once its stdout matches `pattern` (15 s at most). */
export async function spawnUntil(cmd: string[], pattern: RegExp, env: Record<string, string> = {}): Promise<{ proc: Subprocess; match: RegExpMatchArray }> {
  const proc = Bun.spawn(cmd, { cwd: ROOT, stdout: "pipe", stderr: "inherit", env: { ...process.env, ...env } });
  started.push(proc);
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
