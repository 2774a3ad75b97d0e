/**
 * The original Bun/Express autoscaler's flat `config.yaml` keys, translated to
 * Fulcrum's sections so such a file works unchanged:
 *
 *   location: "../backend/src/bin.ts"   minInstances: 2   maxInstances: 8
 *   checkInterval: 5000   healthTimeout: 2000   scaleUpThreshold: 3
 *   scaleDownThreshold: 0.5   idleTimeout: 30000
 */
import type { Override } from "./overrides.ts";

const AUTOSCALER_KEYS: Readonly<Record<string, readonly string[]>> = {
  location: ["instances.location"],
  minInstances: ["instances.min"],
  maxInstances: ["instances.max"],
  // "Health + scaling check interval" in the original: one knob drove both loops.
  checkInterval: ["health.interval", "scaling.checkInterval"],
  healthTimeout: ["health.timeout"],
  scaleUpThreshold: ["scaling.scaleUpThreshold"],
  scaleDownThreshold: ["scaling.scaleDownThreshold"],
  idleTimeout: ["scaling.idleTimeout"],
};

/** Splits `raw` into Fulcrum's own keys and overrides for the legacy ones. */
export function translateLegacyKeys(raw: Record<string, unknown>): { rest: Record<string, unknown>; overrides: Override[] } {
  const rest: Record<string, unknown> = {};
  const overrides: Override[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const targets = AUTOSCALER_KEYS[key];
    if (!targets) rest[key] = value;
    else for (const path of targets) overrides.push({ path, value, origin: key });
  }
  return { rest, overrides };
}
