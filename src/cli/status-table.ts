/**
 * `fulcrum status`: a running balancer's `/lb-status` JSON → the text a
 * terminal shows, like `pm2 ls`: a header block (strategy, uptime, counts,
 * scaling, workers, nodes), then one row per backend. Pure: the clock (`now`),
 * the terminal width and whether to colour come in as options.
 *
 * The JSON is read leniently (`parseStatus`): this may be a newer or older
 * Fulcrum than the one printing it, so a missing or odd field shows as "-"
 * instead of failing; only a body without an `instances` list is refused.
 */

export interface InstanceView {
  readonly id: string;
  readonly url: string;
  readonly pid: number | undefined;
  readonly managed: boolean;
  readonly state: string;
  readonly healthy: boolean | undefined;
  /** Passive health: closed, open (ejected) or half-open (trial requests only). */
  readonly circuit: string | undefined;
  readonly activeRequests: number | undefined;
  readonly totalRequests: number | undefined;
  readonly failedRequests: number | undefined;
  /** Moving average of the time to response headers, ms. */
  readonly responseTime: number | undefined;
  readonly load: number | undefined;
  readonly weight: number | undefined;
  readonly restarts: number | undefined;
}

export interface LastActionView {
  readonly direction: string;
  readonly from: number | undefined;
  readonly to: number | undefined;
  readonly reason: string;
  readonly at: number | undefined;
}

export interface StatusView {
  readonly total: number;
  readonly healthy: number;
  readonly strategy: string;
  /** Seconds. */
  readonly uptime: number | undefined;
  readonly draining: boolean;
  readonly scaling: {
    readonly min: number | undefined;
    readonly max: number | undefined;
    readonly desired: number | undefined;
    readonly load: number | undefined;
    readonly lastAction: LastActionView | null;
  } | null;
  readonly workers: readonly { readonly index: number | undefined; readonly pid: number | undefined; readonly totalRequests: number | undefined }[] | null;
  readonly nodes: readonly { readonly id: string; readonly host: string; readonly port: number | undefined; readonly version: string; readonly started: number | undefined; readonly lastSeen: number | undefined }[] | null;
  readonly instances: readonly InstanceView[];
}

export interface RenderOptions {
  /** ANSI colours (the caller decides: a TTY and no NO_COLOR). State words are written either way. */
  readonly color: boolean;
  /** Terminal columns; rows are fitted to it. Absent: nothing is cut (a pipe or a file). */
  readonly width?: number;
  /** ms since epoch, for "12s ago". */
  readonly now: number;
  /** Where the status came from, shown in the first line. */
  readonly source?: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const str = (v: unknown, fallback = "-") => (typeof v === "string" && v !== "" ? v : typeof v === "number" ? String(v) : fallback);
const bool = (v: unknown) => (typeof v === "boolean" ? v : undefined);
/** ISO text or epoch ms → epoch ms. */
const time = (v: unknown) => (typeof v === "number" ? num(v) : typeof v === "string" && !Number.isNaN(Date.parse(v)) ? Date.parse(v) : undefined);
const list = (v: unknown) => (Array.isArray(v) ? v.filter(isObj) : null);

/** The parsed body, or `undefined` when it is not a Fulcrum status at all. */
export function parseStatus(json: unknown): StatusView | undefined {
  if (!isObj(json) || !Array.isArray(json.instances)) return undefined;
  const instances = json.instances.filter(isObj).map(
    (i): InstanceView => ({
      id: str(i.id),
      url: str(i.url),
      pid: num(i.pid),
      managed: i.managed === true,
      state: str(i.state, "unknown"),
      healthy: bool(i.healthy),
      circuit: typeof i.circuit === "string" ? i.circuit : undefined,
      activeRequests: num(i.activeRequests),
      totalRequests: num(i.totalRequests),
      failedRequests: num(i.failedRequests),
      responseTime: num(i.responseTime),
      load: num(i.load),
      weight: num(i.weight),
      restarts: num(i.restarts),
    }),
  );
  const s = isObj(json.scaling) ? json.scaling : undefined;
  const a = s && isObj(s.lastAction) ? s.lastAction : undefined;
  return {
    total: num(json.total) ?? instances.length,
    healthy: num(json.healthy) ?? instances.filter((i) => i.healthy).length,
    strategy: str(json.strategy),
    uptime: num(json.uptime),
    draining: json.draining === true,
    scaling: s
      ? {
          min: num(s.min),
          max: num(s.max),
          desired: num(s.desired),
          load: num(s.load),
          lastAction: a ? { direction: str(a.direction), from: num(a.from), to: num(a.to), reason: str(a.reason, ""), at: time(a.at) } : null,
        }
      : null,
    workers: list(json.workers)?.map((w) => ({ index: num(w.index), pid: num(w.pid), totalRequests: num(w.totalRequests) })) ?? null,
    nodes: list(json.nodes)?.map((n) => ({ id: str(n.id), host: str(n.host), port: num(n.port), version: str(n.version), started: time(n.started), lastSeen: time(n.lastSeen) })) ?? null,
    instances,
  };
}

// --- colours ---------------------------------------------------------------

type Tint = "green" | "red" | "yellow" | "cyan" | "dim" | "bold";
const SGR: Record<Tint, [string, string]> = {
  green: ["32", "39"],
  red: ["31", "39"],
  yellow: ["33", "39"],
  cyan: ["36", "39"],
  dim: ["2", "22"],
  bold: ["1", "22"],
};
type Paint = (tint: Tint | undefined, text: string) => string;
const painter = (color: boolean): Paint => (tint, text) => (color && tint ? `\x1b[${SGR[tint][0]}m${text}\x1b[${SGR[tint][1]}m` : text);

const STATE_TINT: Record<string, Tint> = { healthy: "green", starting: "cyan", draining: "yellow", unhealthy: "red", failed: "red", stopped: "dim" };

// --- text helpers ----------------------------------------------------------

/** Cuts `text` to `width` characters with an ellipsis, at the end or (URLs: keep scheme and port) in the middle. */
export function truncate(text: string, width: number, where: "end" | "middle" = "end"): string {
  if (text.length <= width) return text;
  if (width <= 1) return text.slice(0, width);
  if (where === "end") return `${text.slice(0, width - 1)}…`;
  const tail = Math.floor((width - 1) / 2);
  return `${text.slice(0, width - 1 - tail)}…${text.slice(text.length - tail)}`;
}

/** 42s, 3m 05s, 2h 03m, 4d 01h. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const two = (n: number) => String(n).padStart(2, "0");
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${two(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${two(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d ${two(Math.floor((s % 86_400) / 3600))}h`;
}

const dash = (v: number | undefined, show: (n: number) => string = String) => (v === undefined ? "-" : show(v));
const ms = (v: number) => `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`;

// --- the table -------------------------------------------------------------

interface Column {
  readonly header: string;
  readonly align: "left" | "right";
  readonly text: (i: InstanceView) => string;
  readonly tint?: (i: InstanceView) => Tint | undefined;
  /** Dropped, lowest first, when the terminal is too narrow even with the URL cut. */
  readonly drop?: number;
}

/** The circuit says why a backend that probes call healthy takes no (or little) traffic. */
function healthyText(i: InstanceView): string {
  if (i.healthy === undefined) return "-";
  if (i.state === "healthy" && i.circuit === "open") return "no (ejected)";
  if (i.state === "healthy" && i.circuit === "half-open") return "trial";
  return i.healthy ? "yes" : "no";
}

const COLUMNS: readonly Column[] = [
  { header: "id", align: "left", text: (i) => i.id },
  { header: "url", align: "left", text: (i) => i.url },
  { header: "pid", align: "right", text: (i) => dash(i.pid), drop: 5 },
  { header: "state", align: "left", text: (i) => i.state, tint: (i) => STATE_TINT[i.state] },
  { header: "healthy", align: "left", text: healthyText, tint: (i) => (healthyText(i) === "trial" ? "yellow" : i.healthy ? "green" : "red") },
  { header: "in flight", align: "right", text: (i) => dash(i.activeRequests) },
  { header: "requests", align: "right", text: (i) => dash(i.totalRequests) },
  { header: "failed", align: "right", text: (i) => dash(i.failedRequests), tint: (i) => ((i.failedRequests ?? 0) > 0 ? "red" : undefined), drop: 3 },
  { header: "resp time", align: "right", text: (i) => (i.totalRequests ? dash(i.responseTime, ms) : "-") },
  { header: "load", align: "right", text: (i) => dash(i.load, (n) => n.toFixed(2)), drop: 4 },
  { header: "weight", align: "right", text: (i) => dash(i.weight), drop: 1 },
  { header: "restarts", align: "right", text: (i) => (i.managed ? dash(i.restarts) : "-"), tint: (i) => ((i.restarts ?? 0) > 0 ? "yellow" : undefined), drop: 2 },
];

const GAP = "  ";
const URL_MIN = 16;

/** Header row plus one row per instance, fitted to `width` when given. */
export function renderTable(instances: readonly InstanceView[], options: Pick<RenderOptions, "color" | "width">): string[] {
  const paint = painter(options.color);
  let columns = [...COLUMNS];
  const cells = (cols: readonly Column[]) => instances.map((i) => cols.map((c) => c.text(i)));
  const natural = (cols: readonly Column[]) => cols.map((c) => Math.max(c.header.length, ...instances.map((i) => c.text(i).length)));
  const total = (widths: readonly number[]) => widths.reduce((a, b) => a + b, 0) + GAP.length * (widths.length - 1);

  let widths = natural(columns);
  const hidden: string[] = [];
  if (options.width !== undefined) {
    const fitUrl = () => {
      const u = columns.findIndex((c) => c.header === "url");
      const excess = total(widths) - (options.width as number);
      if (excess > 0) widths[u] = Math.max(Math.min(URL_MIN, widths[u] as number), (widths[u] as number) - excess);
    };
    fitUrl();
    const droppable = columns.filter((c) => c.drop !== undefined).sort((a, b) => (a.drop as number) - (b.drop as number));
    while (total(widths) > options.width && droppable.length > 0) {
      const gone = droppable.shift() as Column;
      hidden.push(gone.header);
      columns = columns.filter((c) => c !== gone);
      widths = natural(columns);
      fitUrl();
    }
  }

  const pad = (text: string, width: number, align: Column["align"]) => (align === "right" ? text.padStart(width) : text.padEnd(width));
  const fit = (text: string, width: number, header: string) => truncate(text, width, header === "url" ? "middle" : "end");
  const line = (texts: readonly string[], tintOf: (k: number) => Tint | undefined) =>
    texts
      .map((t, k) => {
        const c = columns[k] as Column;
        const w = widths[k] as number;
        const padded = pad(fit(t, w, c.header), w, c.align);
        // Colour only the words, not the padding, so the columns stay aligned either way.
        const word = padded.trim();
        if (!word) return padded;
        const at = padded.indexOf(word);
        return padded.slice(0, at) + paint(tintOf(k), word) + padded.slice(at + word.length);
      })
      .join(GAP)
      .trimEnd();

  const out = [line(columns.map((c) => c.header), () => "bold")];
  const rows = cells(columns);
  instances.forEach((instance, r) => out.push(line(rows[r] as string[], (k) => columns[k]?.tint?.(instance))));
  if (instances.length === 0) out.push(paint("dim", "(no backends)"));
  if (hidden.length > 0) out.push(paint("dim", `(terminal too narrow: ${hidden.join(", ")} hidden)`));
  return out;
}

// --- the whole screen ------------------------------------------------------

const LABEL = 9;
const label = (paint: Paint, name: string) => paint("bold", name.padEnd(LABEL));

export function renderStatus(view: StatusView, options: RenderOptions): string {
  const paint = painter(options.color);
  const ago = (at: number | undefined) => (at === undefined ? "" : `${formatDuration((options.now - at) / 1000)} ago`);
  const healthyTint: Tint = view.total > 0 && view.healthy === view.total ? "green" : view.healthy === 0 ? "red" : "yellow";

  const first = [
    options.source ?? "",
    `strategy ${view.strategy}`,
    `up ${dash(view.uptime, formatDuration)}`,
    `backends ${view.total} (${paint(healthyTint, `${view.healthy} healthy`)})`,
  ].filter(Boolean);
  const lines = [label(paint, "fulcrum") + first.join(GAP) + (view.draining ? `${GAP}${paint("yellow", "DRAINING")}` : "")];

  const s = view.scaling;
  if (s && (s.max || s.desired || s.lastAction)) {
    const a = s.lastAction;
    const last = a ? `${a.direction} ${dash(a.from)} -> ${dash(a.to)}${a.at !== undefined ? `, ${ago(a.at)}` : ""}${a.reason ? ` (${a.reason})` : ""}` : "none";
    const parts = [`min ${dash(s.min)}`, `max ${dash(s.max)}`, `desired ${dash(s.desired)}`, `load ${dash(s.load, (n) => n.toFixed(2))}`, `last action: ${last}`];
    lines.push(label(paint, "scaling") + parts.join(GAP));
  } else if (s) {
    lines.push(label(paint, "scaling") + paint("dim", "off (no managed instances)"));
  }
  if (view.workers && view.workers.length > 0) {
    const items = view.workers.map((w) => `#${dash(w.index)} pid ${dash(w.pid)} ${dash(w.totalRequests)} req`);
    lines.push(...wrap(items, label(paint, "workers"), " ".repeat(LABEL), options.width));
  }
  for (const [k, n] of (view.nodes ?? []).entries()) {
    const parts = [`${n.id} ${n.host}${n.port !== undefined ? `:${n.port}` : ""}`, `v${n.version}`];
    if (n.started !== undefined) parts.push(`up ${ago(n.started).replace(/ ago$/, "")}`);
    if (n.lastSeen !== undefined) parts.push(`seen ${ago(n.lastSeen)}`);
    if (k === 0) parts.push(paint("dim", "(this node)"));
    lines.push((k === 0 ? label(paint, "nodes") : " ".repeat(LABEL)) + parts.join(GAP));
  }
  return [...lines, "", ...renderTable(view.instances, options)].join("\n");
}

/** `items` joined by ", " on lines no wider than `width` (when given), the first after `lead`. */
function wrap(items: readonly string[], lead: string, indent: string, width: number | undefined): string[] {
  const lines: string[] = [];
  let current = "";
  for (const item of items) {
    const next = current ? `${current}, ${item}` : item;
    if (current && width !== undefined && indent.length + next.length > width) {
      lines.push(`${current},`);
      current = item;
    } else current = next;
  }
  lines.push(current);
  return lines.map((l, k) => (k === 0 ? lead : indent) + l);
}
