/**
 * The chaos loop, shared by the failover test and `bench/chaos.ts`: closed-loop
 * clients send idempotent GETs through a balancer while, every `killEveryMs`,
 * one backend (in turn) is SIGKILLed and started again `downMs` later on the
 * same port. Failures are classified by whether every backend was down when the
 * request was sent or answered (nothing can succeed then) or not (a balancer
 * failure). Bounded: the loop ends after `durationMs`, each request after
 * `requestTimeoutMs`.
 */

export interface ChaosBackend {
  readonly name: string;
  /** SIGKILL the process (by PID) and wait for it to exit. */
  kill(): Promise<void>;
  /** Start it again on the same port; resolves once it listens. */
  start(): Promise<void>;
}

export interface ChaosOptions {
  /** Base URL of the balancer under test: `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Path each client requests, e.g. `/slow?ms=5`. */
  readonly path: string;
  readonly backends: readonly ChaosBackend[];
  readonly clients: number;
  readonly durationMs: number;
  /** One backend is killed this often (0: never). */
  readonly killEveryMs: number;
  /** A killed backend is started again this much later. */
  readonly downMs: number;
  readonly requestTimeoutMs?: number;
  /** Extra disruptions at given times from the start (a reload, an admin call). */
  readonly events?: readonly { readonly atMs: number; readonly name: string; readonly run: () => Promise<unknown> }[];
}

export interface ChaosResult {
  readonly sent: number;
  readonly ok: number;
  /** Failed while at least one backend was up: the balancer's fault. */
  readonly failed: number;
  /** Failed while every backend was down (or being restarted). */
  readonly failedAllDown: number;
  /** Why requests failed outside all-down windows: `503 no healthy backend`, `timeout`, ... */
  readonly reasons: Record<string, number>;
  readonly kills: number;
  /** Times from the start (ms) of kills, restarts and events, for the report. */
  readonly timeline: string[];
  readonly elapsedMs: number;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const { backends, durationMs } = options;
  const timeout = options.requestTimeoutMs ?? 5000;
  const down = new Set<string>();
  /** Until when (performance.now()) every backend counts as down, extended while they all are. */
  let allDownUntil = 0;
  const markAllDown = () => {
    if (down.size === backends.length) allDownUntil = Infinity;
  };
  const allDownEnded = () => {
    // A backend just came back: requests still in flight may fail for a moment, give them 100 ms.
    if (allDownUntil === Infinity) allDownUntil = performance.now() + 100;
  };
  const start = performance.now();
  const end = start + durationMs;
  const at = () => Math.round(performance.now() - start);
  const timeline: string[] = [];
  const reasons: Record<string, number> = {};
  let sent = 0;
  let ok = 0;
  let failed = 0;
  let failedAllDown = 0;
  let kills = 0;

  const client = async () => {
    while (performance.now() < end) {
      sent++;
      const sentWhileAllDown = performance.now() < allDownUntil;
      let reason: string | undefined;
      try {
        const res = await fetch(options.url + options.path, { signal: AbortSignal.timeout(timeout) });
        const text = await res.text();
        if (res.status !== 200) reason = `${res.status} ${text.split("\n")[0]?.replace(/^\d{3} /, "").replace(/: http:\S+/, "").slice(0, 60)}`;
      } catch (error) {
        reason = (error as Error).name === "TimeoutError" ? "client timeout" : `network error: ${(error as Error).message}`;
      }
      if (reason === undefined) ok++;
      else if (sentWhileAllDown || performance.now() < allDownUntil) failedAllDown++;
      else {
        failed++;
        reasons[reason] = (reasons[reason] ?? 0) + 1;
      }
    }
  };

  const chaos = async () => {
    if (options.killEveryMs <= 0) return;
    let next = 0;
    for (let t = start + options.killEveryMs; t + options.downMs < end; t += options.killEveryMs) {
      await Bun.sleep(Math.max(0, t - performance.now()));
      const victim = backends[next++ % backends.length] as ChaosBackend;
      down.add(victim.name);
      markAllDown();
      kills++;
      await victim.kill();
      timeline.push(`${at()} ms: killed ${victim.name}`);
      await Bun.sleep(Math.max(0, t + options.downMs - performance.now()));
      await victim.start();
      down.delete(victim.name);
      allDownEnded();
      timeline.push(`${at()} ms: ${victim.name} listening again`);
    }
  };

  const events = (options.events ?? []).map(async (event) => {
    await Bun.sleep(event.atMs);
    if (performance.now() >= end) return;
    await event.run();
    timeline.push(`${at()} ms: ${event.name}`);
  });

  await Promise.all([...Array.from({ length: options.clients }, client), chaos(), ...events]);
  return { sent, ok, failed, failedAllDown, reasons, kills, timeline, elapsedMs: Math.round(performance.now() - start) };
}
