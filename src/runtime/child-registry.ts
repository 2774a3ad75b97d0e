/**
 * A record of the instances this Fulcrum started, kept in a state file next to
 * the config (`.fulcrum/<config>.children.json`). Bun does not kill children
 * when their parent dies (oven-sh/bun#7440), so a Fulcrum started after a
 * SIGKILL of the previous one reads the file and stops that run's leftovers
 * before spawning its own. A process is only touched if its PID *and* its
 * start time (/proc/<pid>/stat) still match the record, so a recycled PID is
 * never signalled.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import type { Logger } from "./log.ts";

interface ProcessRecord {
  readonly pid: number;
  readonly startTime: string;
}

interface StateFile {
  readonly owner: ProcessRecord;
  readonly children: ProcessRecord[];
}

/** Field 22 of /proc/<pid>/stat: start time in clock ticks since boot; undefined if no such process. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function isSameProcess(record: ProcessRecord): boolean {
  return processStartTime(record.pid) === record.startTime;
}

/** Where the state file for `configFile` lives: next to it, or in the temp dir if that is not writable. */
export function stateFilePath(configFile: string | null, cwd: string): string {
  const dir = join(configFile ? dirname(configFile) : cwd, ".fulcrum");
  const name = `${configFile ? basename(configFile) : "command-line"}.children.json`;
  try {
    mkdirSync(dir, { recursive: true });
    return join(dir, name);
  } catch {
    const key = Bun.hash(configFile ?? cwd).toString(36);
    return join(tmpdir(), `fulcrum-${key}-${name}`);
  }
}

export class ChildRegistry {
  readonly #path: string;
  readonly #log: Logger;
  readonly #children = new Map<number, ProcessRecord>();
  readonly #owner: ProcessRecord;

  constructor(path: string, log: Logger) {
    this.#path = path;
    this.#log = log;
    this.#owner = { pid: process.pid, startTime: processStartTime(process.pid) ?? "" };
  }

  get path(): string {
    return this.#path;
  }

  /**
   * Stops what a previous run left behind. Throws if that run is still alive:
   * two balancers must not manage the same instances.
   */
  async reapLeftovers(graceMs: number): Promise<number> {
    let previous: StateFile;
    try {
      previous = JSON.parse(readFileSync(this.#path, "utf8")) as StateFile;
    } catch {
      return 0;
    }
    if (previous.owner.pid !== process.pid && isSameProcess(previous.owner)) {
      throw new Error(`another Fulcrum (pid ${previous.owner.pid}) is running with this config (state file ${this.#path})`);
    }
    const leftovers = (previous.children ?? []).filter(isSameProcess);
    for (const child of leftovers) {
      this.#log.warn(`stopping instance pid ${child.pid} left over from a previous run (pid ${previous.owner.pid})`);
      signalGroup(child.pid, "SIGTERM");
    }
    const deadline = performance.now() + graceMs;
    while (leftovers.some(isSameProcess) && performance.now() < deadline) await Bun.sleep(50);
    for (const child of leftovers.filter(isSameProcess)) signalGroup(child.pid, "SIGKILL");
    rmSync(this.#path, { force: true });
    return leftovers.length;
  }

  add(pid: number): void {
    this.#children.set(pid, { pid, startTime: processStartTime(pid) ?? "" });
    this.#write();
  }

  remove(pid: number): void {
    if (this.#children.delete(pid)) this.#write();
  }

  /** On a clean shutdown: nothing is left to reap. */
  clear(): void {
    this.#children.clear();
    rmSync(this.#path, { force: true });
  }

  #write(): void {
    const state: StateFile = { owner: this.#owner, children: [...this.#children.values()] };
    try {
      // Write then rename, so a crash mid-write never leaves half a file.
      writeFileSync(`${this.#path}.tmp`, JSON.stringify(state));
      renameSync(`${this.#path}.tmp`, this.#path);
    } catch (error) {
      this.#log.warn(`could not record instance PIDs in ${this.#path}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, signal);
      return;
    } catch {
      // try the next form
    }
  }
}
