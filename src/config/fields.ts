/**
 * A reader over one config object that collects errors instead of throwing,
 * so one run of validation reports every mistake at once, each with its path,
 * the bad value and what is allowed. Unknown keys are errors too, with a
 * "did you mean" when a known key is close.
 */

export interface ConfigIssue {
  readonly path: string;
  readonly message: string;
}

/** Thrown once validation has looked at everything and found problems. */
export class ConfigError extends Error {
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(issues.map(formatIssue).join("\n"));
    this.name = "ConfigError";
  }
}

export function formatIssue(issue: ConfigIssue): string {
  return issue.path ? `${issue.path}: ${issue.message}` : issue.message;
}

/** Short, unambiguous rendering of a bad value for an error message. */
export function show(value: unknown): string {
  if (typeof value === "function") return "a function";
  if (value === undefined) return "undefined";
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

interface NumberRule {
  min?: number;
  max?: number;
  integer?: boolean;
}

function describeRule(rule: NumberRule): string {
  const kind = rule.integer ? "an integer" : "a number";
  if (rule.min !== undefined && rule.max !== undefined) return `${kind} between ${rule.min} and ${rule.max}`;
  if (rule.min !== undefined) return `${kind} >= ${rule.min}`;
  if (rule.max !== undefined) return `${kind} <= ${rule.max}`;
  return kind;
}

export class Fields {
  readonly #value: Record<string, unknown>;
  readonly #path: string;
  readonly #issues: ConfigIssue[];
  readonly #known = new Set<string>();

  constructor(value: Record<string, unknown>, path: string, issues: ConfigIssue[]) {
    this.#value = value;
    this.#path = path;
    this.#issues = issues;
  }

  pathOf(key: string): string {
    return this.#path ? `${this.#path}.${key}` : key;
  }

  fail(key: string, message: string): void {
    this.#issues.push({ path: this.pathOf(key), message });
  }

  /** The raw value of `key`, marking it known. */
  raw(key: string): unknown {
    this.#known.add(key);
    return this.#value[key];
  }

  has(key: string): boolean {
    this.#known.add(key);
    return this.#value[key] !== undefined;
  }

  number(key: string, fallback: number, rule: NumberRule = {}): number {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    const ok =
      typeof v === "number" &&
      Number.isFinite(v) &&
      (!rule.integer || Number.isInteger(v)) &&
      (rule.min === undefined || v >= rule.min) &&
      (rule.max === undefined || v <= rule.max);
    if (ok) return v;
    this.fail(key, `must be ${describeRule(rule)}, got ${show(v)}`);
    return fallback;
  }

  /** A duration in milliseconds: an integer >= `min` (default 0). */
  duration(key: string, fallback: number, min = 0): number {
    return this.number(key, fallback, { integer: true, min });
  }

  boolean(key: string, fallback: boolean): boolean {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (typeof v === "boolean") return v;
    this.fail(key, `must be true or false, got ${show(v)}`);
    return fallback;
  }

  string(key: string, fallback: string, check?: (s: string) => string | undefined): string {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (typeof v !== "string" || v === "") {
      this.fail(key, `must be a non-empty string, got ${show(v)}`);
      return fallback;
    }
    const problem = check?.(v);
    if (problem) {
      this.fail(key, `${problem}, got ${show(v)}`);
      return fallback;
    }
    return v;
  }

  optionalString(key: string): string | null {
    return this.has(key) ? this.string(key, "") || null : null;
  }

  oneOf<const T extends string>(key: string, allowed: readonly T[], fallback: T): T {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (typeof v === "string" && (allowed as readonly string[]).includes(v)) return v as T;
    this.fail(key, `must be one of ${allowed.map((a) => `"${a}"`).join(", ")}, got ${show(v)}`);
    return fallback;
  }

  /** A nested object, or `undefined` when absent (an error when not an object). */
  object(key: string): Fields | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (!isPlainObject(v)) {
      this.fail(key, `must be an object, got ${show(v)}`);
      return undefined;
    }
    return new Fields(v, this.pathOf(key), this.#issues);
  }

  /** Like `object`, but an absent key reads as `{}` so defaults apply. */
  section(key: string): Fields {
    return this.object(key) ?? new Fields({}, this.pathOf(key), this.#issues);
  }

  /** Report keys nobody asked for, suggesting the closest known one. */
  rejectUnknown(): void {
    for (const key of Object.keys(this.#value)) {
      if (this.#known.has(key)) continue;
      const hint = closest(key, [...this.#known]);
      const known = [...this.#known].join(", ");
      this.fail(key, hint ? `unknown key (did you mean "${hint}"?)` : `unknown key (allowed: ${known})`);
    }
  }
}

/** The known name within edit distance 2 (or a third of its length) of `name`, if any. */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  const limit = Math.max(2, Math.floor((best?.length ?? 0) / 3));
  return bestDistance <= limit ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
