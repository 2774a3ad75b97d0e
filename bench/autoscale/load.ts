/**
 * One run's load and observations: closed-loop clients following the profile
 * (each loops GET /work?ms=N), per-second and per-phase results, and
 * /lb-status polls. Every loop is bounded in count and time.
 */
import type { Clock, Fulcrum } from "./fulcrum.ts";
import type { Options, Phase } from "./options.ts";

export interface Second {
  ok: number;
  failed: number;
  latencies: number[];
}
export interface Poll {
  t: number;
  ok: boolean;
  error?: string;
  desired: number;
  healthy: number;
  /** Managed instances with a process (any state but stopped/failed): what the run pays for. */
  running: number;
  /** Managed instances by state. */
  states: Record<string, number>;
  load: number;
  inflight: number;
}
export interface StatusBody {
  scaling?: { desired?: number; load?: number };
  instances?: { managed?: boolean; state?: string; pid?: number | null; activeRequests?: number }[];
}

export class Recorder {
  readonly seconds: Second[] = [];
  /** Latencies of the successful requests, by the phase in which they were *sent*. */
  readonly phaseLatencies: number[][];
  readonly phaseFailed: number[];
  readonly failures = new Map<string, number>();
  totalOk = 0;
  totalFailed = 0;
  readonly polls: Poll[] = [];
  pollStop = false;
  readonly abort = new AbortController();
  readonly profileSeconds: number;

  constructor(
    readonly opt: Options,
    readonly clock: Clock,
    readonly say: (line: string) => void,
  ) {
    this.phaseLatencies = opt.profile.map(() => []);
    this.phaseFailed = opt.profile.map(() => 0);
    this.profileSeconds = opt.profile[opt.profile.length - 1]!.end;
  }

  phaseIndexAt(t: number): number {
    return this.opt.profile.findIndex((p) => t >= p.start && t < p.end);
  }
  phaseAt(t: number): Phase | undefined {
    return this.opt.profile[this.phaseIndexAt(t)];
  }
  clientsAt(t: number): number {
    return this.phaseAt(t)?.clients ?? 0;
  }

  #bucket(t: number): Second {
    const i = Math.max(0, Math.floor(t));
    for (let k = this.seconds.length; k <= i && k < 100_000; k++) this.seconds.push({ ok: 0, failed: 0, latencies: [] });
    return this.seconds[Math.min(i, this.seconds.length - 1)]!;
  }

  /** One closed-loop client: request after request while the profile wants client `id` running. */
  async #client(id: number, baseUrl: string): Promise<void> {
    const { opt, clock, abort } = this;
    const url = `${baseUrl}/work?ms=${opt.workMs}`;
    // Bound by count as well as time: no client can do more than one request per ms of the profile.
    for (let i = 0; i < this.profileSeconds * 1000 + 1; i++) {
      const sentAt = clock.now();
      if (abort.signal.aborted || sentAt >= this.profileSeconds || id >= this.clientsAt(sentAt)) return;
      const phase = this.phaseIndexAt(sentAt);
      const began = performance.now();
      let failure: string | undefined;
      try {
        const res = await fetch(url, { signal: AbortSignal.any([abort.signal, AbortSignal.timeout(opt.requestTimeoutMs)]) });
        await res.arrayBuffer();
        if (res.status < 200 || res.status > 299) failure = `status ${res.status}`;
      } catch (e) {
        if (abort.signal.aborted) return; // our own shutdown, not the balancer's fault
        failure = (e as Error).name === "TimeoutError" ? `timeout ${opt.requestTimeoutMs} ms` : `${(e as Error).name}: ${(e as Error).message}`;
      }
      const ms = performance.now() - began;
      const b = this.#bucket(clock.now());
      if (failure) {
        b.failed++;
        this.totalFailed++;
        this.phaseFailed[phase]!++;
        this.failures.set(failure, (this.failures.get(failure) ?? 0) + 1);
        await Bun.sleep(50); // no hot loop on a balancer that refuses at once
      } else {
        b.ok++;
        this.totalOk++;
        b.latencies.push(ms);
        this.phaseLatencies[phase]!.push(ms);
      }
    }
  }

  /** Starts clients as the profile wants them (they stop themselves when it wants fewer). */
  async driveLoad(baseUrl: string): Promise<void> {
    const { opt, clock } = this;
    const running = new Map<number, Promise<void>>();
    const all: Promise<void>[] = [];
    for (let i = 0; i < (this.profileSeconds * 1000) / 20 + 10; i++) {
      const t = clock.now();
      if (this.abort.signal.aborted || t >= this.profileSeconds) break;
      const want = this.clientsAt(t);
      for (let id = 0; id < want; id++) {
        if (running.has(id)) continue;
        const p = this.#client(id, baseUrl).finally(() => running.delete(id));
        running.set(id, p);
        all.push(p);
      }
      // Wake at the next phase boundary or in 20 ms, whichever is first.
      const end = this.phaseAt(t)?.end ?? t;
      await Bun.sleep(Math.max(1, Math.min(20, (end - clock.now()) * 1000)));
    }
    // The profile is over: clients finish their request in flight (bounded by the request timeout).
    const settled = await Promise.race([Promise.all(all).then(() => true), Bun.sleep(opt.requestTimeoutMs + 2000).then(() => false)]);
    if (!settled) {
      this.say(`${running.size} client(s) still busy ${opt.requestTimeoutMs + 2000} ms after the profile ended: aborting them`);
      this.abort.abort();
      await Promise.race([Promise.all(all), Bun.sleep(2000)]);
    }
  }

  /** Polls /lb-status every POLL_MS until `untilS` (or pollStop); notes instance PIDs for the /proc check. */
  async pollStatus(baseUrl: string, untilS: number, fulcrum: Fulcrum): Promise<void> {
    const { clock } = this;
    const every = this.opt.pollMs / 1000;
    // Poll k is due at t = k × every (0, 0.5, 1.0, ... by default); a slow answer skips the slots it overran.
    for (let k = 0, i = 0; i < untilS / every + 10; i++) {
      if (this.pollStop || clock.now() >= untilS) return;
      const t = clock.now();
      try {
        const res = await fetch(`${baseUrl}/lb-status`, { signal: AbortSignal.timeout(Math.max(200, this.opt.pollMs * 2)) });
        const body = (await res.json()) as StatusBody;
        const states: Record<string, number> = {};
        let healthy = 0;
        let running = 0;
        let inflight = 0;
        for (const inst of body.instances ?? []) {
          if (!inst.managed) continue;
          if (typeof inst.pid === "number") fulcrum.noteInstance(inst.pid, "status");
          const state = inst.state ?? "?";
          states[state] = (states[state] ?? 0) + 1;
          if (state === "healthy") healthy++;
          if (state !== "stopped" && state !== "failed") running++;
          inflight += inst.activeRequests ?? 0;
        }
        this.polls.push({ t, ok: true, desired: body.scaling?.desired ?? Number.NaN, healthy, running, states, load: body.scaling?.load ?? Number.NaN, inflight });
      } catch (e) {
        const nan = Number.NaN;
        this.polls.push({ t, ok: false, error: (e as Error).message, desired: nan, healthy: nan, running: nan, states: {}, load: nan, inflight: nan });
      }
      k = Math.max(k + 1, Math.floor(clock.now() / every) + 1);
      await Bun.sleep(Math.max(1, (k * every - clock.now()) * 1000 + 2)); // +2 ms: never wake just before the slot
    }
  }
}
