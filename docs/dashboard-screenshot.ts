/**
 * Makes docs/dashboard.png, the README's picture of /lb-dashboard:
 *
 *   bun docs/dashboard-screenshot.ts [--out docs/dashboard.png] [--seconds 60]
 *
 * Runs Fulcrum on 127.0.0.1 with two managed instances of the example backend
 * (autoscaling between 2 and 5) and one static copy of it, drives a load that
 * rises and falls so the charts show a scale-up and a scale-down, kills the
 * static backend near the end, and screenshots the page in headless Chromium.
 * Every process it starts is stopped by PID before it exits.
 */
import type { Subprocess } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { findChromium, launchChromium } from "../tests/helpers/chromium.ts";
import { Output } from "../tests/helpers/procs.ts";

const ROOT = resolve(import.meta.dir, "..");
const arg = (name: string, fallback: string) => {
  const i = Bun.argv.indexOf(`--${name}`);
  return i >= 0 ? (Bun.argv[i + 1] ?? fallback) : fallback;
};
const out = resolve(arg("out", join(ROOT, "docs/dashboard.png")));
const seconds = Number(arg("seconds", "60"));

const chromium = findChromium();
if (!chromium) {
  console.error("chromium is not installed (apt-get install chromium); no screenshot made");
  process.exit(1);
}

const started: Subprocess[] = [];
const dir = mkdtempSync(join(tmpdir(), "fulcrum-screenshot-"));
function spawn(cmd: string[]) {
  const proc = Bun.spawn(cmd, { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, PORT: undefined } });
  started.push(proc);
  return { proc, stdout: new Output(proc.stdout), stderr: new Output(proc.stderr) };
}

async function stopAll(): Promise<void> {
  for (const proc of started) if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
  await Promise.race([Promise.all(started.map((p) => p.exited)), Bun.sleep(10_000)]);
  for (const proc of started) if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
}

/** `clients` loops of requests that take `fromMs` to `toMs` each, until `until` (performance.now()). */
async function load(url: string, clients: number, until: number, fromMs: number, toMs: number): Promise<void> {
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < until) {
        const ms = Math.round(fromMs + Math.random() * (toMs - fromMs));
        await fetch(`${url}/work?ms=${ms}`, { signal: AbortSignal.timeout(10_000) })
          .then((r) => r.arrayBuffer())
          .catch(() => undefined);
      }
    }),
  );
}

try {
  const staticPort = 26_999;
  const staticBackend = spawn(["bun", join(ROOT, "examples/backend.ts"), "--port", String(staticPort)]);
  await staticBackend.stdout.wait(/listening on port/);
  const config = join(dir, "lb.json");
  await Bun.write(
    config,
    JSON.stringify({
      listen: { port: 0, hostname: "127.0.0.1" },
      backends: [`http://127.0.0.1:${staticPort}`],
      instances: { location: join(ROOT, "examples/backend.ts"), min: 2, max: 5, basePort: 27_000 },
      health: { interval: 500, fall: 1 },
      scaling: { checkInterval: 1000, scaleUpThreshold: 3, scaleDownThreshold: 1.5, idleTimeout: 6000, cooldown: 4000, stableWindow: 6000 },
      log: { access: false },
    }),
  );
  const lb = spawn(["bun", join(ROOT, "src/main.ts"), "--config", config]);
  const port = Number((await lb.stdout.wait(/Load balancer running on port (\d+)/, 20_000))[1]);
  const url = `http://127.0.0.1:${port}`;

  const browser = await launchChromium(chromium, spawn);
  try {
    const page = await browser.open(`${url}/lb-dashboard`, { width: 1280, height: 900 });
    const t0 = performance.now();
    const at = (fraction: number) => t0 + seconds * 1000 * fraction;
    // Light, then a surge that needs more instances, then light again while they scale back down.
    await load(url, 3, at(0.2), 20, 80);
    await load(url, 28, at(0.5), 100, 400);
    const tail = load(url, 2, at(1), 20, 80);
    while (performance.now() < at(0.8)) await Bun.sleep(100);
    staticBackend.proc.kill("SIGKILL");
    await tail;
    await page.evaluate(`document.querySelector('[data-window="60"]').click()`);
    await Bun.sleep(500);
    await page.screenshot(out);
    if (page.errors.length > 0) console.error(`errors in the page:\n${page.errors.join("\n")}`);
    console.log(`wrote ${out}`);
  } finally {
    await browser.close();
  }
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
