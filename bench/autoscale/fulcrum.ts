/**
 * Fulcrum as a child of the autoscaling scenario: started in its own process
 * group, its output kept line by line with times, stopped with SIGTERM by PID
 * (SIGKILL after a grace period), and a /proc check afterwards that no instance
 * it started outlived it. Every PID is appended to PID_FILE with its start time
 * so that autoscale.sh can stop leftovers (PID and start time must match).
 */
import type { Subprocess } from "bun";
import { appendFileSync, readdirSync, readFileSync } from "node:fs";
import { ROOT, statFields, untilWoken } from "../procs.ts";

// ───────────────────────────── /proc ─────────────────────────────

const startTime = (pid: number) => statFields(pid)?.[19];
/** Running (not a zombie) and still the same process (start time matches). */
export function alive(pid: number, start: string | undefined): boolean {
  const f = statFields(pid);
  return f !== undefined && f[0] !== "Z" && (start === undefined || f[19] === start);
}
function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
  } catch {
    return "?";
  }
}
/** Every live process whose parent or process group is one of `ids`. */
function processesRelatedTo(ids: Set<number>): { pid: number; ppid: number; pgrp: number; cmd: string }[] {
  const found: { pid: number; ppid: number; pgrp: number; cmd: string }[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync("/proc");
  } catch {}
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const f = statFields(pid);
    if (!f || f[0] === "Z") continue;
    const ppid = Number(f[1]);
    const pgrp = Number(f[2]);
    if (ids.has(ppid) || ids.has(pgrp)) found.push({ pid, ppid, pgrp, cmd: cmdline(pid) });
  }
  return found;
}

// ───────────────────────────── Fulcrum ─────────────────────────────

/** Seconds since the profile started; reset when it starts (earlier lines get negative times). */
export class Clock {
  t0 = performance.now();
  now = () => (performance.now() - this.t0) / 1000;
}

/** One of Fulcrum's output lines, stamped with the clock when it reached us. */
export interface LogLine {
  t: number;
  text: string;
}
export interface Survivor {
  pid: number;
  cmd: string;
  how: string;
}

export class Fulcrum {
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  readonly pid: number;
  readonly start: string | undefined;
  readonly lines: LogLine[] = [];
  droppedLines = 0;
  exitCode?: number | null;
  signal?: string | null;
  stopMs?: number;
  killed?: boolean;
  /** Instances seen (from the log, /lb-status and /proc): PID → start time. */
  readonly instancePids = new Map<number, string | undefined>();
  readonly #waiters = new Set<() => void>();
  #stopping: Promise<void> | undefined;

  constructor(
    configFile: string,
    readonly clock: Clock,
    readonly pidFile: string,
  ) {
    // Its own process group (detached): a terminal's Ctrl-C reaches us, not Fulcrum
    // directly, so Fulcrum sees exactly one signal, our SIGTERM, and drains.
    this.proc = Bun.spawn(["bun", "run", "src/main.ts", "--config", configFile], {
      cwd: ROOT,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      detached: true,
      env: { ...process.env },
    });
    this.pid = this.proc.pid;
    this.start = this.#record(this.pid, "fulcrum");
    this.#read(this.proc.stdout);
    this.#read(this.proc.stderr);
    void this.proc.exited.then((code) => {
      this.exitCode = code;
      this.signal = this.proc.signalCode === null ? null : String(this.proc.signalCode);
      for (const wake of this.#waiters) wake();
    });
  }

  #record(pid: number, name: string): string | undefined {
    const start = startTime(pid);
    try {
      appendFileSync(this.pidFile, `${pid} ${start ?? "?"} ${name}\n`);
    } catch {}
    return start;
  }

  noteInstance(pid: number, source: string): void {
    if (!Number.isInteger(pid) || pid <= 0 || this.instancePids.has(pid)) return;
    this.instancePids.set(pid, this.#record(pid, `instance(${source})`));
  }

  #read(stream: ReadableStream<Uint8Array>): void {
    void (async () => {
      const decoder = new TextDecoder();
      let rest = "";
      for await (const chunk of stream) {
        rest += decoder.decode(chunk, { stream: true });
        let nl = rest.indexOf("\n");
        for (let i = 0; nl >= 0 && i < 100_000; i++) {
          this.#onLine(rest.slice(0, nl));
          rest = rest.slice(nl + 1);
          nl = rest.indexOf("\n");
        }
      }
      if (rest) this.#onLine(rest);
    })().catch(() => {});
  }

  #onLine(text: string): void {
    if (this.lines.length < 200_000) this.lines.push({ t: this.clock.now(), text });
    else this.droppedLines++;
    const m = /instance \S+ starting on port \d+ \(pid (\d+)\)/.exec(text);
    if (m) this.noteInstance(Number(m[1]), "log");
    for (const wake of this.#waiters) wake();
  }

  /** The first line matching `pattern`; rejects if Fulcrum exits first or after `timeoutMs`. */
  waitLine(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const check = () => {
      for (const l of this.lines) {
        const m = pattern.exec(l.text);
        if (m) return m;
      }
      if (this.exitCode !== undefined) throw new Error(`Fulcrum exited (${this.exitCode}) before printing ${pattern}; output:\n${this.tail()}`);
      return undefined;
    };
    return untilWoken(this.#waiters, check, timeoutMs, () => new Error(`timed out after ${timeoutMs} ms waiting for ${pattern}; output so far:\n${this.tail()}`));
  }

  tail(n = 30): string {
    return this.lines
      .slice(-n)
      .map((l) => l.text)
      .join("\n");
  }

  /** SIGTERM by PID, wait (bounded), SIGKILL after `graceMs`. Idempotent. */
  stop(graceMs: number, say: (line: string) => void): Promise<void> {
    this.#stopping ??= (async () => {
      if (!alive(this.pid, this.start)) return;
      // Last look for children we might not have seen in the log or in /lb-status.
      for (const p of processesRelatedTo(new Set([this.pid]))) if (p.pid !== this.pid) this.noteInstance(p.pid, "/proc");
      const began = performance.now();
      try {
        process.kill(this.pid, "SIGTERM");
      } catch {}
      const deadline = began + graceMs;
      while (alive(this.pid, this.start) && performance.now() < deadline) await Promise.race([this.proc.exited, Bun.sleep(50)]);
      if (alive(this.pid, this.start)) {
        say(`Fulcrum (pid ${this.pid}) still running ${graceMs} ms after SIGTERM: SIGKILL`);
        this.killed = true;
        try {
          process.kill(this.pid, "SIGKILL");
        } catch {}
      }
      await Promise.race([this.proc.exited, Bun.sleep(3000)]);
      this.stopMs = Math.round(performance.now() - began);
    })();
    return this.#stopping;
  }

  /** After the stop: any instance it started that is still running (bounded wait for stragglers). */
  async survivors(): Promise<Survivor[]> {
    const check = () => {
      const out: Survivor[] = [];
      for (const [pid, start] of this.instancePids) if (alive(pid, start)) out.push({ pid, cmd: cmdline(pid), how: "recorded instance PID" });
      const ids = new Set<number>([...this.instancePids.keys(), this.pid]);
      for (const p of processesRelatedTo(ids)) {
        if (p.pid === this.pid) continue; // its own process group; checked just below
        if (!out.some((o) => o.pid === p.pid)) out.push({ pid: p.pid, cmd: p.cmd, how: `ppid ${p.ppid}, process group ${p.pgrp}` });
      }
      if (alive(this.pid, this.start)) out.push({ pid: this.pid, cmd: cmdline(this.pid), how: "Fulcrum itself" });
      return out;
    };
    // A process that got SIGTERM a moment ago may take a few ms to go; give it 2 s.
    let left = check();
    for (let i = 0; i < 20 && left.length > 0; i++) {
      await Bun.sleep(100);
      left = check();
    }
    return left;
  }
}
