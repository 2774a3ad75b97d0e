/**
 * A strict reader of the Prometheus text exposition format (0.0.4), for tests:
 * every sample belongs to a family declared with HELP and TYPE before it,
 * names and labels are well formed, values parse, no series repeats, counters
 * end in `_total`, and a histogram's buckets are cumulative with `+Inf` equal
 * to `_count`. Returns the problems found (none means valid) and the samples.
 */

export interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,|$)/y;

function parseLabels(text: string): Record<string, string> | undefined {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const m = LABEL.exec(text);
    if (!m) return undefined;
    if ((m[1] as string) in labels) return undefined;
    labels[m[1] as string] = (m[2] as string).replace(/\\(["\\n])/g, (_, c: string) => (c === "n" ? "\n" : c));
  }
  return labels;
}

export function readPrometheusText(text: string): { problems: string[]; samples: Sample[] } {
  const problems: string[] = [];
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const helped = new Set<string>();
  const seen = new Set<string>();
  if (!text.endsWith("\n")) problems.push("the text does not end with a newline");
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      if (!NAME.test(name)) problems.push(`bad family name ${name}`);
      if (kind === "HELP") helped.add(name);
      else {
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest)) problems.push(`bad type ${rest} for ${name}`);
        if (types.has(name)) problems.push(`TYPE given twice for ${name}`);
        if (!helped.has(name)) problems.push(`TYPE before HELP for ${name}`);
        if (rest === "counter" && !name.endsWith("_total")) problems.push(`counter ${name} does not end in _total`);
        types.set(name, rest);
      }
      continue;
    }
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) {
      problems.push(`unparsable line ${JSON.stringify(line)}`);
      continue;
    }
    const name = m[1] as string;
    const labels = m[2] === undefined ? {} : parseLabels(m[2]);
    if (!labels) {
      problems.push(`bad labels in ${JSON.stringify(line)}`);
      continue;
    }
    const value = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    if (Number.isNaN(value) && m[3] !== "NaN") problems.push(`bad value in ${JSON.stringify(line)}`);
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, "");
    const type = types.get(family);
    if (!type) problems.push(`sample ${name} of an undeclared family`);
    else if (family !== name && type !== "histogram" && type !== "summary") problems.push(`suffix on ${name} of a ${type}`);
    if (name.endsWith("_bucket") && type === "histogram" && labels.le === undefined) problems.push(`bucket without le: ${line}`);
    const key = `${name}{${Object.entries(labels).sort().map(([k, v]) => `${k}=${v}`).join(",")}}`;
    if (seen.has(key)) problems.push(`series repeated: ${key}`);
    seen.add(key);
    samples.push({ name, labels, value });
  }
  // Histograms: cumulative buckets, +Inf last and equal to _count.
  for (const [family, type] of types) {
    if (type !== "histogram") continue;
    const bySeries = new Map<string, Sample[]>();
    for (const s of samples) {
      if (s.name !== `${family}_bucket`) continue;
      const { le: _, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      bySeries.set(key, [...(bySeries.get(key) ?? []), s]);
    }
    for (const [key, buckets] of bySeries) {
      let previous = -Infinity;
      let last = -1;
      for (const b of buckets) {
        if (b.value < last) problems.push(`${family}${key}: bucket le=${b.labels.le} below the one before`);
        const le = b.labels.le === "+Inf" ? Infinity : Number(b.labels.le);
        if (!(le > previous)) problems.push(`${family}${key}: bucket bounds not increasing at le=${b.labels.le}`);
        previous = le;
        last = b.value;
      }
      const count = samples.find((s) => s.name === `${family}_count` && JSON.stringify(s.labels) === key);
      if (previous !== Infinity) problems.push(`${family}${key}: no +Inf bucket`);
      if (!count || count.value !== last) problems.push(`${family}${key}: _count is not the +Inf bucket`);
    }
  }
  return { problems, samples };
}
