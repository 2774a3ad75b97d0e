/**
 * Failover under restarts, Fulcrum next to HAProxy and nginx: the same chaos
 * loop (tests/helpers/chaos.ts) through each. 16 closed-loop clients send
 * `GET /slow?ms=5`; every 2 s one backend (in turn) is SIGKILLed and started
 * again 1 s later on the same port. Scenarios:
 *
 *   two         2 backends
 *   reload      3 backends, reloaded to 2 and back to 3 meanwhile (SIGHUP; HAProxy -W + SIGUSR2)
 *   three       3 backends, no reload
 *
 *   bun bench/chaos.ts                                  # every scenario, every target, 20 s each
 *   bun bench/chaos.ts --duration 30 --scenarios two --targets fulcrum,haproxy
 *
 * Settings, the same for everyone: health checks every 1 s (HAProxy `check
 * inter 1s rise 1 fall 2`, `retries 2`, `option redispatch`; Fulcrum
 * `health.interval` 1000, its defaults otherwise); nginx runs its defaults
 * (`max_fails=1 fail_timeout=10s`, `proxy_next_upstream error timeout`).
 * Each target gets fresh backends. Everything listens on 127.0.0.1 and is
 * stopped by PID at the end.
 */
import type { Subprocess } from "bun";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runChaos, type ChaosBackend, type ChaosResult } from "../tests/helpers/chaos.ts";
import { startNginx } from "./peers.ts";
import { arg, cleanup, freePort, spawnQuiet, spawnUntil, waitHttp } from "./procs.ts";

const durationMs = Number(arg("duration", "20")) * 1000;
const scenarios = arg("scenarios", "two,reload,three").split(",");
const targets = arg("targets", "fulcrum,haproxy,nginx").split(",");
const CLIENTS = 16;
const HOST = "127.0.0.1";
const dir = mkdtempSync(join(tmpdir(), "fulcrum-chaos-"));

interface Target {
  readonly url: string;
  /** Points the balancer at these backend ports, the way its operators reload it. */
  reload(ports: readonly number[]): Promise<void>;
  stop(): Promise<void>;
}

async function restartableBackend(name: string): Promise<ChaosBackend & { port: number }> {
  const start = (port: number) => spawnUntil(["bun", "tests/fixtures/backend.ts", "--port", String(port), "--name", name], /listening on (\d+)/);
  let { proc, match } = await start(0);
  const port = Number(match[1]);
  return {
    name,
    port,
    async kill() {
      proc.kill("SIGKILL");
      await proc.exited;
    },
    async start() {
      ({ proc } = await start(port));
    },
  };
}

async function stopProc(proc: Subprocess): Promise<void> {
  proc.kill("SIGTERM");
  if ((await Promise.race([proc.exited, Bun.sleep(10_000).then(() => "late")])) === "late") proc.kill("SIGKILL");
  await proc.exited;
}

async function fulcrum(ports: readonly number[]): Promise<Target> {
  const file = join(dir, "fulcrum.json");
  const write = (list: readonly number[]) =>
    writeFileSync(
      file,
      JSON.stringify({ listen: { port: 0, hostname: HOST }, backends: list.map((p) => `http://${HOST}:${p}`), strategy: "round-robin", health: { interval: 1000 }, log: { access: false } }),
    );
  write(ports);
  const { proc, match } = await spawnUntil(["bun", "run", "src/main.ts", "--config", file], /Load balancer running on port (\d+)/);
  return {
    url: `http://${HOST}:${match[1]}`,
    async reload(list) {
      write(list);
      proc.kill("SIGHUP");
      await Bun.sleep(100);
    },
    stop: () => stopProc(proc),
  };
}

async function haproxy(ports: readonly number[]): Promise<Target> {
  const port = freePort();
  const file = join(dir, "haproxy.cfg");
  const write = (list: readonly number[]) =>
    writeFileSync(
      file,
      `global
  maxconn 4096
defaults
  mode http
  option http-keep-alive
  option redispatch
  retries 2
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe
  bind ${HOST}:${port}
  default_backend be
backend be
  balance roundrobin
${list.map((p, i) => `  server s${i} ${HOST}:${p} check inter 1s rise 1 fall 2`).join("\n")}
`,
    );
  write(ports);
  // Master-worker mode: SIGUSR2 reloads the file as HAProxy's operators do.
  const proc = spawnQuiet(["haproxy", "-W", "-q", "-db", "-f", file]);
  await waitHttp(`http://${HOST}:${port}/`, 10_000, "haproxy");
  return {
    url: `http://${HOST}:${port}`,
    async reload(list) {
      write(list);
      proc.kill("SIGUSR2");
      await Bun.sleep(100);
    },
    stop: () => stopProc(proc),
  };
}

async function nginx(ports: readonly number[]): Promise<Target> {
  // nginx's defaults: no upstream keep-alive, passive checks only (max_fails=1 fail_timeout=10s).
  const peer = await startNginx(join(dir, "nginx"), { backends: ports, readyPath: "/slow?ms=0" });
  return { url: peer.url, reload: (list) => peer.reload(list), stop: () => stopProc(peer.proc) };
}

const START = { fulcrum, haproxy, nginx } as Record<string, (ports: readonly number[]) => Promise<Target>>;

async function run(scenario: string, target: string): Promise<ChaosResult> {
  const count = scenario === "two" ? 2 : 3;
  const backends = await Promise.all(Array.from({ length: count }, (_, i) => restartableBackend(String.fromCharCode(97 + i))));
  const ports = backends.map((b) => b.port);
  const start = START[target];
  if (!start) throw new Error(`--targets: one of ${Object.keys(START).join(", ")}`);
  const balancer = await start(ports);
  try {
    // Reloads at about 1/3 and 2/3 of the run, off the kill beats.
    const events =
      scenario === "reload"
        ? [
            { atMs: Math.round(durationMs / 3) + 500, name: "reload to 2 backends", run: () => balancer.reload(ports.slice(0, 2)) },
            { atMs: Math.round((2 * durationMs) / 3) + 500, name: "reload back to 3", run: () => balancer.reload(ports) },
          ]
        : [];
    return await runChaos({ url: balancer.url, path: "/slow?ms=5", backends, clients: CLIENTS, durationMs, killEveryMs: 2000, downMs: 1000, events });
  } finally {
    await balancer.stop();
    await Promise.all(backends.map((b) => b.kill()));
  }
}

const LABEL: Record<string, string> = { two: "2 backends", reload: "3 backends + two reloads (to 2 and back)", three: "3 backends, no reload" };

try {
  const rows: string[] = [];
  for (const scenario of scenarios) {
    const cells: string[] = [];
    for (const target of targets) {
      console.error(`chaos: ${scenario} through ${target} (${durationMs / 1000} s)`);
      const r = await run(scenario, target);
      const why = Object.entries(r.reasons)
        .map(([reason, n]) => `${n.toLocaleString("en")} ${reason}`)
        .join("; ");
      console.error(`  sent ${r.sent}, ok ${r.ok}, failed ${r.failed}${r.failedAllDown ? ` (+${r.failedAllDown} while every backend was down)` : ""}${why ? `: ${why}` : ""}`);
      cells.push(`${r.failed.toLocaleString("en")} failed of ${r.sent.toLocaleString("en")}${why ? ` (${why})` : ""}`);
    }
    rows.push(`| ${LABEL[scenario] ?? scenario} | ${cells.join(" | ")} |`);
  }
  console.log(`\n### Chaos loop: ${CLIENTS} clients, GET /slow?ms=5, ${durationMs / 1000} s, one backend SIGKILLed every 2 s and back 1 s later\n`);
  console.log(`| pool | ${targets.join(" | ")} |`);
  console.log(`|---|${targets.map(() => "---").join("|")}|`);
  for (const row of rows) console.log(row);
} finally {
  cleanup();
}
