/**
 * Fulcrum's shipped config: the balancer on port 4000 in front of two managed
 * instances of the bundled example backend. Every option and its default is in
 * the README (Configuration) and in src/config/schema.ts. `defineConfig` comes
 * from the virtual module "fulcrum" that Fulcrum provides when it loads this
 * file, so it also loads in the compiled binary, where src/ is absent.
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
