import type { Config } from "./schema.ts";

/**
 * Identity helper that gives an `lb.config.ts` editor completion and type
 * checking. Import it as `import { defineConfig } from "fulcrum"`: Fulcrum
 * provides that module itself at load time, so the config also works in the
 * compiled binary, where `src/` is absent.
 */
export function defineConfig(config: Config): Config {
  return config;
}
