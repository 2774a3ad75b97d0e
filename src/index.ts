/**
 * What a config file may use. In `lb.config.ts`, import values from "fulcrum"
 * (Fulcrum provides that module at load time) and types with `import type`.
 */
export { defineConfig } from "./config/define.ts";
export type { BackendConfig, Config, KeySource, LogLevel, StrategyName } from "./config/schema.ts";
export type { Backend, BackendState, BackendView, PickContext, Strategy } from "./types.ts";
