/**
 * Fulcrum's shipped config: the balancer on port 4000 in front of two managed
 * instances of the bundled example backend. Every option and its default is in
 * docs/configuration.md. Values come from "fulcrum", types via `import type`,
 * so this file also loads in the compiled binary.
 */
import { defineConfig } from "fulcrum";

export default defineConfig({
  listen: { port: 4000 },
  instances: {
    location: "./examples/backend.ts",
    min: 2,
    max: 8,
    basePort: 5001,
  },
  strategy: "least-load",
  health: { path: "/health", interval: 5000, timeout: 2000 },
  scaling: { scaleUpThreshold: 3, scaleDownThreshold: 0.5, idleTimeout: 30000 },
  log: { level: "info", format: "text", access: true },
});
