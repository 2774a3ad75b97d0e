/**
 * The registry: every built-in strategy by name. An unknown name is rejected
 * by config validation, so `createStrategy` never falls through.
 */
import type { StrategyName, StrategySpec } from "../config/schema.ts";
import type { Strategy } from "../types.ts";
import { Hash } from "./hash.ts";
import { LeastLoad } from "./least-load.ts";
import { PowerOfTwoChoices } from "./p2c.ts";
import { RoundRobin } from "./round-robin.ts";
import { Weighted } from "./weighted.ts";

type Factory = (spec: StrategySpec & { kind: "builtin" }) => Strategy;

export const STRATEGIES = {
  "round-robin": () => new RoundRobin(),
  "least-load": () => new LeastLoad(),
  weighted: () => new Weighted(),
  p2c: () => new PowerOfTwoChoices(),
  hash: (spec) => new Hash(spec.key),
} as const satisfies Record<StrategyName, Factory>;

export function createStrategy(spec: StrategySpec): Strategy {
  return spec.kind === "custom" ? spec.strategy : STRATEGIES[spec.name](spec);
}
