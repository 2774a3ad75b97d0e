/**
 * bench/autoscale.ts's options, all from environment variables (autoscale.sh
 * turns its flags into them). COMPARE=1 switches to the comparison's defaults:
 * a saturating backend (CONCURRENCY 4), min 1 / max 10, 4 → 40 → 4 clients,
 * and Fulcrum's own defaults for every scaling, health and slowStart setting
 * (only the ones you set are written into the config).
 */
const env = process.env;

function num(name: string, fallback: number, min: number, max: number, integer = true): number {
  const value = env[name];
  const n = value === undefined || value === "" ? fallback : Number(value);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    throw new Error(`${name}: expected ${integer ? "an integer" : "a number"} in [${min}, ${max}], got ${value}`);
  }
  return n;
}
const isSet = (name: string) => env[name] !== undefined && env[name] !== "";

export interface Phase {
  /** Seconds since the profile started. */
  readonly start: number;
  readonly end: number;
  readonly clients: number;
}

/** "20:2,30:30,30:2" (seconds:clients, in order) → phases. */
export function parseProfile(text: string): Phase[] {
  const phases: Phase[] = [];
  let at = 0;
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+(?:\.\d+)?)s?:(\d+)$/.exec(part);
    if (!m) throw new Error(`PROFILE: bad phase ${JSON.stringify(part)} (use seconds:clients, e.g. 20:2,30:30,30:2)`);
    const seconds = Number(m[1]);
    const clients = Number(m[2]);
    if (seconds <= 0 || seconds > 600) throw new Error(`PROFILE: phase length ${seconds}s outside (0, 600]`);
    if (clients > 1000) throw new Error(`PROFILE: ${clients} clients is more than 1000`);
    phases.push({ start: at, end: at + seconds, clients });
    at += seconds;
  }
  if (phases.length === 0) throw new Error("PROFILE: no phases");
  if (at > 1200) throw new Error(`PROFILE: ${at}s in total is more than 1200s`);
  return phases;
}

/** Scaling keys: environment variable, config key, the single run's (fast) default, bounds. */
const SCALING = [
  ["CHECK_INTERVAL", "checkInterval", 1000, 100, 600_000],
  ["STABLE_WINDOW", "stableWindow", 10_000, 100, 3_600_000],
  ["PANIC_WINDOW", "panicWindow", 1000, 100, 3_600_000],
  ["IDLE_TIMEOUT", "idleTimeout", 5000, 0, 3_600_000],
  ["COOLDOWN", "cooldown", 3000, 0, 3_600_000],
  ["SCALE_UP_THRESHOLD", "scaleUpThreshold", 3, 0, 1e6],
  ["SCALE_DOWN_THRESHOLD", "scaleDownThreshold", 0.5, 0, 1e6],
] as const;

export function readOptions() {
  const compare = env.COMPARE === "1";
  const lowClients = num("LOW_CLIENTS", compare ? 4 : 2, 0, 1000);
  const highClients = num("HIGH_CLIENTS", compare ? 40 : 30, 0, 1000);
  const low1 = num("LOW1_SECONDS", compare ? 15 : 20, 1, 600);
  const high = num("HIGH_SECONDS", compare ? 40 : 30, 1, 600);
  const low2 = num("LOW2_SECONDS", compare ? 60 : 30, 1, 600);
  if (compare && env.PROFILE) throw new Error("COMPARE: the comparison runs low → high → low; set LOW1/HIGH/LOW2_SECONDS and LOW/HIGH_CLIENTS instead of PROFILE");
  // The single run writes every scaling key (fast defaults); the comparison only those you set.
  const scaling: Record<string, number> = {};
  for (const [name, key, fallback, min, max] of SCALING) {
    if (!compare || isSet(name)) scaling[key] = num(name, fallback, min, max, !key.endsWith("Threshold"));
  }
  const instanceExtras: Record<string, number> = {};
  if (!compare || isSet("SLOW_START")) instanceExtras.slowStart = num("SLOW_START", 1000, 0, 600_000);
  const health: Record<string, number> = {};
  if (!compare || isSet("HEALTH_INTERVAL")) health.interval = num("HEALTH_INTERVAL", 1000, 100, 600_000);
  const opt = {
    compare,
    lowClients,
    highClients,
    profile: parseProfile(env.PROFILE || `${low1}:${lowClients},${high}:${highClients},${low2}:${lowClients}`),
    workMs: num("WORK_MS", 100, 0, 60_000),
    /** examples/backend.ts --concurrency (0: no limit, every request just sleeps). */
    concurrency: num("CONCURRENCY", compare ? 4 : 0, 0, 100_000),
    requestTimeoutMs: num("REQUEST_TIMEOUT_MS", 10_000, 100, 120_000),
    pollMs: num("POLL_MS", 500, 100, 10_000),
    min: num("MIN_INSTANCES", 1, 0, 64),
    max: num("MAX_INSTANCES", compare ? 10 : 6, 1, 64),
    scaling,
    instanceExtras,
    health,
    stopGraceMs: num("STOP_GRACE_MS", 20_000, 1000, 300_000),
    keepTmp: env.KEEP_TMP === "1",
    rawJson: env.RAW_JSON || undefined,
  };
  if (opt.min > opt.max) throw new Error(`MIN_INSTANCES ${opt.min} > MAX_INSTANCES ${opt.max}`);
  return opt;
}

export type Options = ReturnType<typeof readOptions>;
