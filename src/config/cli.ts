/**
 * Command line → what to do. Pure: no file or process access.
 *
 *   bun run src/main.ts [--config FILE] [--port N] [--backend URL ...] [--strategy NAME]
 *                       [--workers N] [--check] [--help] [--version]
 *
 * (`bun run src/main.ts status ...` is dispatched before this: src/cli/status.ts.)
 */
import { closest } from "./fields.ts";
import { numeric, type Override } from "./overrides.ts";

export interface CliOptions {
  /** `--config FILE`, when given. */
  readonly configPath: string | undefined;
  readonly overrides: readonly Override[];
  /** `--backend` was given: static backends replace the config's. */
  readonly backends: readonly string[];
  readonly check: boolean;
  readonly help: boolean;
  readonly version: boolean;
}

export const USAGE = `Usage: bun run src/main.ts [options]
       bun run src/main.ts status [--url URL] [--token TOKEN] [--watch]
       (the compiled binary: fulcrum [options], fulcrum status ...)

Commands:
  status             print a running balancer's /lb-status as a table; see status --help

Options:
  --config FILE      config file (.ts, .js, .json, .yaml) [default: ./lb.config.ts]
  --port N           listen port (overrides listen.port and PORT)
  --backend URL      static backend; repeat for more. Without --config, no file is read
  --strategy NAME    round-robin | least-load | weighted | p2c | hash
  --workers N        processes sharing the listen port (cluster.workers)
  --check            validate the config, print the effective config, exit 0 or 1
  --help             show this help
  --version          print the version

Environment: PORT, REDIS_URL, WORKER_COUNT, HEALTH_CHECK_INTERVAL
Docs: docs/configuration.md (every option), docs/deploy.md, docs/migrating.md`;

const VALUE_FLAGS: Readonly<Record<string, string | null>> = {
  "--config": null,
  "--port": "listen.port",
  "--backend": null,
  "--strategy": "strategy",
  "--workers": "cluster.workers",
};
const SWITCHES = ["--check", "--help", "-h", "--version", "-v"];

export class CliError extends Error {
  override name = "CliError";
}

export function parseCli(argv: readonly string[]): CliOptions {
  let configPath: string | undefined;
  const backends: string[] = [];
  const overrides: Override[] = [];
  const switches = new Set<string>();

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    if (SWITCHES.includes(flag)) {
      switches.add(flag);
      continue;
    }
    if (!(flag in VALUE_FLAGS)) {
      const hint = arg.startsWith("-") ? closest(flag, [...Object.keys(VALUE_FLAGS), ...SWITCHES]) : undefined;
      throw new CliError(
        arg.startsWith("-")
          ? `unknown flag ${flag}${hint ? ` (did you mean ${hint}?)` : ""}; see --help`
          : `unexpected argument ${JSON.stringify(arg)}; see --help`,
      );
    }
    const value = eq > 0 && flag !== arg ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === "" || (value.startsWith("--") && flag === arg)) {
      throw new CliError(`${flag} needs a value; see --help`);
    }
    if (flag === "--config") configPath = value;
    else if (flag === "--backend") backends.push(value);
    else {
      const path = VALUE_FLAGS[flag] as string;
      overrides.push({ path, value: flag === "--strategy" ? value : numeric(value), origin: flag });
    }
  }
  if (backends.length > 0) overrides.push({ path: "backends", value: backends, origin: "--backend" });

  return {
    configPath,
    overrides,
    backends,
    check: switches.has("--check"),
    help: switches.has("--help") || switches.has("-h"),
    version: switches.has("--version") || switches.has("-v"),
  };
}
