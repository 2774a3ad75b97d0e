/**
 * `fulcrum status [--url URL] [--token TOKEN] [--watch]`: fetches a running
 * balancer's `/lb-status` and prints it with status-table.ts. This file is the
 * effectful shell (arguments, HTTP, the watch loop, signals); what the table
 * looks like is decided in status-table.ts.
 */
import { CliError } from "../config/cli.ts";
import { closest } from "../config/fields.ts";
import { parseStatus, renderStatus, type StatusView } from "./status-table.ts";

export const STATUS_USAGE = `Usage: bun run src/main.ts status [--url URL] [--token TOKEN] [--watch]
       fulcrum status [--url URL] [--token TOKEN] [--watch]     (the compiled binary)

Prints the running balancer's /lb-status as a table: one row per backend.

Options:
  --url URL        the balancer, or its admin.port when that is set
                   [default: http://127.0.0.1:$PORT, or http://127.0.0.1:4000 without PORT]
                   /lb-status is added unless the URL has a path of its own
  --token TOKEN    sent as Authorization: Bearer TOKEN
  --watch          print it again every second until Ctrl-C
  --help           show this help

Exit code 1, with one line saying why, when the balancer cannot be reached
(connection refused, no answer within 3 s) or does not answer with its status.`;

/** How long one fetch of the status may take, reading the body included. */
export const STATUS_TIMEOUT_MS = 3000;
const WATCH_EVERY_MS = 1000;

export interface StatusArgs {
  /** The full URL fetched, `/lb-status` included. */
  readonly endpoint: string;
  readonly token: string | undefined;
  readonly watch: boolean;
  readonly help: boolean;
}

const VALUE_FLAGS = ["--url", "--token"];
const SWITCHES = ["--watch", "-w", "--help", "-h"];

/** Pure: the command line after `status`, and the environment (for `PORT`). */
export function parseStatusArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): StatusArgs {
  const values = new Map<string, string>();
  const switches = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    if (SWITCHES.includes(flag)) {
      switches.add(flag);
      continue;
    }
    if (!VALUE_FLAGS.includes(flag)) {
      const hint = arg.startsWith("-") ? closest(flag, [...VALUE_FLAGS, ...SWITCHES]) : undefined;
      throw new CliError(
        arg.startsWith("-")
          ? `unknown flag ${flag}${hint ? ` (did you mean ${hint}?)` : ""}; see status --help`
          : `unexpected argument ${JSON.stringify(arg)}; see status --help`,
      );
    }
    const value = eq > 0 && flag !== arg ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === "" || (value.startsWith("--") && flag === arg)) throw new CliError(`${flag} needs a value; see status --help`);
    values.set(flag, value);
  }
  const help = switches.has("--help") || switches.has("-h");
  return {
    endpoint: help ? "" : statusEndpoint(values.get("--url") ?? defaultUrl(env)),
    token: values.get("--token"),
    watch: switches.has("--watch") || switches.has("-w"),
    help,
  };
}

function defaultUrl(env: Readonly<Record<string, string | undefined>>): string {
  const port = env.PORT;
  if (port === undefined || port === "") return "http://127.0.0.1:4000";
  const n = Number(port);
  if (!/^\d+$/.test(port.trim()) || n < 1 || n > 65535) {
    throw new CliError(`PORT must be an integer between 1 and 65535 to find the balancer, got ${JSON.stringify(port)}; or pass --url`);
  }
  return `http://127.0.0.1:${n}`;
}

/** `--url` → what is fetched: `host:port` gets `http://`, and a URL without a path gets `/lb-status`. */
export function statusEndpoint(text: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new CliError(`--url must be a URL like http://127.0.0.1:4000, got ${JSON.stringify(text)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new CliError(`--url must start with http:// or https://, got ${JSON.stringify(text)}`);
  if (url.pathname === "/" || url.pathname === "") url.pathname = "/lb-status";
  return url.href;
}

export type Fetch = (url: string, init: RequestInit) => Promise<Response>;
export type StatusResult = { readonly ok: true; readonly view: StatusView } | { readonly ok: false; readonly message: string };

/** One fetch of the status; every way it can fail becomes one sentence. */
export async function fetchStatus(
  endpoint: string,
  options: { readonly token?: string; readonly timeoutMs?: number; readonly fetch?: Fetch; readonly signal?: AbortSignal } = {},
): Promise<StatusResult> {
  const timeoutMs = options.timeoutMs ?? STATUS_TIMEOUT_MS;
  // Our own timer rather than AbortSignal.timeout(): that one keeps Bun's event loop
  // alive until it fires, so `--watch` would linger up to 3 s after Ctrl-C.
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout.signal]) : timeout.signal;
  const headers: Record<string, string> = { accept: "application/json" };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const unreachable = (why: string): StatusResult => ({ ok: false, message: `cannot reach the balancer at ${endpoint}: ${why}` });
  let res: Response;
  let body: string;
  try {
    res = await (options.fetch ?? fetch)(endpoint, { headers, signal, redirect: "manual" });
    body = await res.text();
  } catch (error) {
    if (timeout.signal.aborted) return unreachable(`no answer within ${timeoutMs / 1000} s`);
    const code = (error as { code?: unknown } | null)?.code;
    if (code === "ECONNREFUSED" || code === "ConnectionRefused") return unreachable("connection refused (is Fulcrum running there? pass --url)");
    return unreachable(error instanceof Error ? error.message : String(error));
  } finally {
    clearTimeout(timer);
  }
  if (res.status !== 200) {
    const hint =
      res.status === 401 || res.status === 403
        ? " (pass --token)"
        : res.status === 404
          ? " (not Fulcrum's status: with admin.port set, pass --url http://HOST:<admin.port>)"
          : "";
    return { ok: false, message: `the balancer at ${endpoint} answered ${res.status}${res.statusText ? ` ${res.statusText}` : ""}${hint}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { ok: false, message: `${endpoint} did not answer with JSON: is it Fulcrum's /lb-status?` };
  }
  const view = parseStatus(json);
  if (!view) return { ok: false, message: `${endpoint} answered JSON without an instances list: is it Fulcrum's /lb-status?` };
  return { ok: true, view };
}

export interface StatusIO {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: { write(text: string): unknown; readonly isTTY?: boolean; readonly columns?: number };
  readonly stderr: { write(text: string): unknown };
}

/** Runs the command; resolves with the exit code. */
export async function runStatus(argv: readonly string[], io: StatusIO): Promise<number> {
  let args: StatusArgs;
  try {
    args = parseStatusArgs(argv, io.env);
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    io.stderr.write(`fulcrum status: ${error.message}\n`);
    return 1;
  }
  if (args.help) {
    io.stdout.write(`${STATUS_USAGE}\n`);
    return 0;
  }
  const tty = io.stdout.isTTY === true;
  // no-color.org: NO_COLOR present and not empty turns colour off, whatever its value.
  const color = tty && !io.env.NO_COLOR;
  const source = new URL(args.endpoint).origin;
  const render = (view: StatusView) => renderStatus(view, { color, width: tty ? io.stdout.columns : undefined, now: Date.now(), source });

  if (!args.watch) {
    const result = await fetchStatus(args.endpoint, { token: args.token });
    if (!result.ok) {
      io.stderr.write(`fulcrum status: ${result.message}\n`);
      return 1;
    }
    io.stdout.write(`${render(result.view)}\n`);
    return 0;
  }

  // --watch: until SIGINT (Ctrl-C) or SIGTERM. A failed fetch is shown and tried again next second.
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    while (!stop.signal.aborted) {
      const started = performance.now();
      const result = await fetchStatus(args.endpoint, { token: args.token, signal: stop.signal });
      if (stop.signal.aborted) break;
      if (tty) {
        const frame = result.ok ? render(result.view) : `fulcrum status: ${result.message}`;
        const footer = `every ${WATCH_EVERY_MS / 1000}s, Ctrl-C to stop; ${new Date().toLocaleTimeString()}`;
        io.stdout.write(`\x1b[H\x1b[2J${frame}\n\n${color ? `\x1b[2m${footer}\x1b[22m` : footer}\n`);
      } else if (result.ok) io.stdout.write(`${render(result.view)}\n\n`);
      else io.stderr.write(`fulcrum status: ${result.message}\n`);
      await sleep(WATCH_EVERY_MS - (performance.now() - started), stop.signal);
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  return 0;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
