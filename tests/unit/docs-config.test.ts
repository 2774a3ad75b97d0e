/**
 * docs/configuration.md documents every option Fulcrum reads. The list of
 * options comes from the code, two ways, and the union is checked:
 *
 * 1. the validator itself: each section of a config is given an unknown key,
 *    and the "unknown key (allowed: ...)" error lists the keys it reads there;
 * 2. the `Config` interface (and `BackendConfig`) in src/config/schema.ts.
 *
 * Every leaf option needs a row in one of the page's option tables
 * (`| Key | Type | Default | Meaning |`), every top-level section a heading.
 * Rows that name no option of the code fail too.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ConfigError } from "../../src/config/fields.ts";
import { validateConfig } from "../../src/config/validate.ts";

const ROOT = join(import.meta.dir, "../..");
const options = { baseDir: "/srv/app", bunPath: "/usr/bin/bun" };
const PROBE = "__docs_probe__";

/**
 * Fields of the resolved config that are not options a user writes, with the
 * reason. Every other resolved field must be an option the validator accepts.
 */
const RESOLVED_ONLY: Record<string, string> = {
  "proxy.retiredTransport": "true when the retired proxy.transport was set (documented as proxy.transport)",
  "strategy.kind": "builtin or custom: which form of `strategy` was written",
};

/** Options whose value is a map of the user's own keys (not options): not walked into. */
const MAPS = new Set(["instances.env"]);

/** A config that sets every optional section, so that each one resolves to an object. */
const FULL = {
  listen: { tls: { cert: "cert.pem", key: "key.pem" } },
  backends: ["http://127.0.0.1:3001"],
  instances: { location: "app.ts" },
  strategy: { name: "hash" },
  rateLimit: { requestsPerSecond: 5 },
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The keys the validator reads in the object at `path` (dot-separated, `[]` for a list element), from its own error message. */
function keysReadAt(path: string[], element?: Record<string, unknown>): string[] {
  const raw = structuredClone(FULL) as Record<string, unknown>;
  let node = raw;
  for (const key of path) {
    if (key === "[]") continue;
    const next = node[key];
    node = node[key] = isObject(next) ? next : {};
  }
  if (path.at(-1) === "[]") {
    // A list element: replace the parent's list with one element of the given form.
    let parent = raw;
    for (const key of path.slice(0, -2)) parent = parent[key] as Record<string, unknown>;
    parent[path.at(-2) as string] = [{ ...element, [PROBE]: 1 }];
  } else node[PROBE] = 1;
  try {
    validateConfig(raw, options);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const where = path.join(".").replace(".[]", "[0]");
    const issue = error.issues.find((i) => i.path === (where ? `${where}.${PROBE}` : PROBE));
    const allowed = issue?.message.match(/^unknown key \(allowed: (.*)\)$/)?.[1];
    if (allowed) return allowed.split(", ");
  }
  throw new Error(`the validator did not list the keys it reads at ${path.join(".") || "the top level"}`);
}

/** Every option the validator accepts, as dotted paths (`backends[].url`); sections included. */
function validatorKeys(): Set<string> {
  const resolved = validateConfig(FULL, options) as unknown as Record<string, unknown>;
  const out = new Set<string>();
  const walk = (path: string[], resolvedNode: Record<string, unknown>) => {
    for (const key of keysReadAt(path)) {
      const dotted = [...path, key].join(".");
      out.add(dotted);
      const value = resolvedNode[key];
      if (isObject(value) && !MAPS.has(dotted)) walk([...path, key], value);
    }
  };
  walk([], resolved);
  // List elements: backends in both of their object forms.
  for (const element of [{ url: "http://127.0.0.1:3001" }, { host: "127.0.0.1", port: 3001 }]) {
    for (const key of keysReadAt(["backends", "[]"], element)) out.add(`backends[].${key}`);
  }
  return out;
}

/** Every field of the resolved config, as dotted paths. */
function resolvedKeys(): Set<string> {
  const out = new Set<string>();
  const walk = (prefix: string, node: Record<string, unknown>) => {
    for (const [key, value] of Object.entries(node)) {
      const dotted = prefix ? `${prefix}.${key}` : key;
      out.add(dotted);
      if (isObject(value) && !MAPS.has(dotted)) walk(dotted, value);
      if (Array.isArray(value) && isObject(value[0])) walk(`${dotted}[]`, value[0]);
    }
  };
  walk("", validateConfig(FULL, options) as unknown as Record<string, unknown>);
  return out;
}

/** The members of the `Config` interface (one per line, or inline `{ a?: x; b: y }`) and of `BackendConfig`'s object forms. */
function schemaKeys(source: string): Set<string> {
  const out = new Set<string>();
  const inline = (prefix: string, text: string) => {
    for (const m of text.matchAll(/(\w+)\??:/g)) out.add(`${prefix}.${m[1]}`);
  };
  const body = source.slice(source.indexOf("export interface Config {"), source.indexOf("export type StrategySpec"));
  const stack: string[] = [];
  for (const line of body.split("\n").slice(1)) {
    const member = line.match(/^\s*(\w+)\??: (.*)$/);
    if (member) {
      const [, key, rest] = member as unknown as [string, string, string];
      const dotted = [...stack, key].join(".");
      out.add(dotted);
      if (rest === "{") stack.push(key);
      else if (rest.startsWith("{")) inline(dotted, rest);
    }
    if (/^\s*\};$/.test(line)) stack.pop();
  }
  // `backends?: BackendConfig[]`: the object forms of one backend.
  const alias = source.match(/export type BackendConfig = (.*);/)?.[1] ?? "";
  for (const form of alias.matchAll(/\{([^}]*)\}/g)) inline("backends[]", form[1] ?? "");
  return out;
}

interface Row {
  readonly key: string;
  readonly type: string;
}

/** The rows of every `| Key | Type | Default | Meaning |` table: the first cell's key and the type cell. */
function optionRows(markdown: string): Row[] {
  const rows: Row[] = [];
  let inTable = false;
  for (const line of markdown.split("\n")) {
    if (/^\| Key \| Type \| Default \| Meaning \|$/.test(line)) {
      inTable = true;
      continue;
    }
    if (!line.startsWith("|")) {
      inTable = false;
      continue;
    }
    if (!inTable || line.startsWith("| ---")) continue;
    const cells = line.split(" | ");
    const key = cells[0]?.match(/^\| `([^`]+)`$/)?.[1];
    rows.push({ key: key ?? cells[0] ?? "", type: cells[1] ?? "" });
  }
  return rows;
}

/** The keys in `keys` the page does not document: a leaf without a table row, a top-level section without a heading. */
function undocumented(keys: ReadonlySet<string>, markdown: string): string[] {
  const rows = new Set(optionRows(markdown).map((r) => r.key));
  const isSection = (key: string) => [...keys].some((k) => k.startsWith(`${key}.`) || k.startsWith(`${key}[].`));
  const headed = (key: string) => new RegExp(`^## \`${key}\`$`, "m").test(markdown);
  return [...keys].filter((key) => {
    if (rows.has(key)) return false;
    if (!isSection(key)) return true;
    return !key.includes(".") && !headed(key);
  });
}

const docPath = join(ROOT, "docs/configuration.md");
const doc = await Bun.file(docPath).text();
const schema = await Bun.file(join(ROOT, "src/config/schema.ts")).text();
const fromValidator = validatorKeys();
const fromSchema = schemaKeys(schema);
const known = new Set([...fromValidator, ...fromSchema]);

describe("docs/configuration.md covers every option", () => {
  test("the option list really comes from the code (and is not empty)", () => {
    expect(fromValidator.size).toBeGreaterThan(60);
    expect(fromSchema.size).toBeGreaterThan(60);
    for (const key of ["listen.tls.cert", "backends[].maxConnections", "instances.command", "health.eject.baseTime", "proxy.queue.timeout", "proxy.retryBudget.min", "proxy.transport", "strategy.key"]) {
      expect(known.has(key), key).toBe(true);
    }
  });

  test("every option the validator or the schema knows has a table row (or, for a section, a heading)", () => {
    expect(undocumented(known, doc)).toEqual([]);
  });

  test("every row has a type", () => {
    expect(optionRows(doc).filter((r) => r.type.trim() === "")).toEqual([]);
  });

  test("every row names an option of the code", () => {
    const strays = optionRows(doc)
      .map((r) => r.key)
      .filter((key) => !known.has(key));
    expect(strays).toEqual([]);
  });

  test("every field of the resolved config is an option, or allow-listed with a reason", () => {
    const unexplained = [...resolvedKeys()].filter((key) => !fromValidator.has(key) && !(key in RESOLVED_ONLY));
    expect(unexplained).toEqual([]);
    for (const key of Object.keys(RESOLVED_ONLY)) expect(resolvedKeys().has(key), `${key} is still resolved (else drop it from RESOLVED_ONLY)`).toBe(true);
  });

  test("the check fails when a row is removed", () => {
    const withoutRow = doc
      .split("\n")
      .filter((line) => !line.startsWith("| `proxy.queue.timeout` |"))
      .join("\n");
    expect(undocumented(known, withoutRow)).toEqual(["proxy.queue.timeout"]);
    const withoutHeading = doc.replace(/^## `cluster`$/m, "## Cluster");
    expect(undocumented(known, withoutHeading)).toEqual(["cluster"]);
  });
});
