/**
 * Values that come from somewhere other than the config file's own keys
 * (the original autoscaler's flat YAML keys, environment variables, flags),
 * applied over the raw config before validation. Each remembers its origin so
 * a validation error can say `listen.port (from PORT): ...`.
 */
import { isPlainObject } from "./fields.ts";

export interface Override {
  /** Dotted path in the config, e.g. `listen.port`. */
  readonly path: string;
  readonly value: unknown;
  /** What the operator typed: `PORT`, `--port`, `minInstances`. */
  readonly origin: string;
}

export function applyOverrides(
  raw: Record<string, unknown>,
  overrides: readonly Override[],
): { raw: Record<string, unknown>; origins: Map<string, string> } {
  const out = structuredCloneLoose(raw);
  const origins = new Map<string, string>();
  for (const { path, value, origin } of overrides) {
    const keys = path.split(".");
    const last = keys.pop() as string;
    let node = out;
    for (const key of keys) {
      const next = node[key];
      node = node[key] = isPlainObject(next) ? next : {};
    }
    node[last] = value;
    origins.set(path, origin);
  }
  return { raw: out, origins };
}

/** Copies plain objects (so overrides never mutate an imported module), keeps everything else by reference. */
function structuredCloneLoose(value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = isPlainObject(v) && !("pick" in v) ? structuredCloneLoose(v) : v;
  return out;
}

/** Env and flag values are strings; numbers-as-text become numbers, the rest stays for the validator to reject. */
export function numeric(text: string): number | string {
  return /^\s*-?\d+(\.\d+)?\s*$/.test(text) ? Number(text) : text;
}
