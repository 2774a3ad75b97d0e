/**
 * Finds, reads and validates the config: file (ts/js/json/yaml) < legacy keys
 * < environment < flags, then `validateConfig`. Errors come out as one
 * `ConfigError` listing every problem.
 */
import { plugin } from "bun";
import { existsSync } from "node:fs";
import { dirname, extname, resolve } from "node:path";
import type { CliOptions } from "./cli.ts";
import { defineConfig } from "./define.ts";
import { envOverrides } from "./env.ts";
import { ConfigError, isPlainObject, show } from "./fields.ts";
import { translateLegacyKeys } from "./legacy.ts";
import { applyOverrides } from "./overrides.ts";
import type { ResolvedConfig } from "./schema.ts";
import { validateConfig } from "./validate.ts";

export const DEFAULT_CONFIG_FILE = "lb.config.ts";

export interface LoadedConfig {
  readonly config: ResolvedConfig;
  /** The file read, or `null` when flags alone configured Fulcrum. */
  readonly file: string | null;
}

export interface LoadEnvironment {
  readonly cwd: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The `bun` executable that runs managed `location` entries. */
  readonly bunPath: string;
}

export async function loadConfig(cli: CliOptions, environment: LoadEnvironment): Promise<LoadedConfig> {
  // `--backend` without `--config` means "no file": the quickstart runs from anywhere.
  const file = cli.configPath ?? (cli.backends.length > 0 ? null : DEFAULT_CONFIG_FILE);
  const path = file === null ? null : resolve(environment.cwd, file);
  const fileValue = path === null ? {} : await readConfigFile(path);
  if (!isPlainObject(fileValue)) {
    throw new ConfigError([{ path: "", message: `${file}: must export a config object, got ${show(fileValue)}` }]);
  }

  const { rest, overrides: legacy } = translateLegacyKeys(fileValue);
  // --backend replaces the file's backends; it also stands in for managed instances.
  if (cli.backends.length > 0) delete rest.instances;
  const { raw, origins } = applyOverrides(rest, [...legacy, ...envOverrides(environment.env), ...cli.overrides]);
  const config = validateConfig(raw, {
    baseDir: path === null ? environment.cwd : dirname(path),
    bunPath: environment.bunPath,
    origins,
  });
  return { config, file: path };
}

export async function readConfigFile(path: string): Promise<unknown> {
  const fail = (message: string): never => {
    throw new ConfigError([{ path: "", message: `${path}: ${message}` }]);
  };
  if (!existsSync(path)) fail("config file not found (pass --config FILE, or --backend URL to run without one)");
  const ext = extname(path).toLowerCase();
  try {
    switch (ext) {
      case ".ts":
      case ".mts":
      case ".js":
      case ".mjs": {
        registerFulcrumModule();
        // import() caches by specifier; a query string makes a reload read the file again.
        const specifier = loads++ === 0 ? path : `${path}?reload=${loads}`;
        const mod = (await import(specifier)) as { default?: unknown; config?: unknown };
        return mod.default ?? mod.config ?? fail("must `export default` a config object");
      }
      case ".json":
        return JSON.parse(await Bun.file(path).text());
      case ".yaml":
      case ".yml":
        return Bun.YAML.parse(await Bun.file(path).text());
      default:
        return fail(`unsupported config file type "${ext}" (use .ts, .js, .json or .yaml)`);
    }
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    return fail(`could not be read: ${error instanceof Error ? error.message : String(error)}`);
  }
}

let registered = false;
let loads = 0;

/**
 * Lets a config file `import { defineConfig } from "fulcrum"` wherever it
 * lives, including next to the compiled binary where `src/` does not exist.
 */
function registerFulcrumModule(): void {
  if (registered) return;
  registered = true;
  plugin({
    name: "fulcrum-config-module",
    setup(build) {
      build.module("fulcrum", () => ({ exports: { defineConfig }, loader: "object" }));
    },
  });
}
