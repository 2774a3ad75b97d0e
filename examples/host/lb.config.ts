/**
 * A host's config for examples/fulcrum.service, installed as
 * /etc/fulcrum/lb.config.ts (docs/deploy.md): Fulcrum on port 8080 in front of
 * managed instances of an app in /srv/app, status and admin on port 9090 with
 * a token from /etc/fulcrum/fulcrum.env, JSON logs for journald.
 */
import { defineConfig } from "fulcrum";

export default defineConfig({
  listen: { port: 8080 },
  instances: {
    location: "/srv/app/server.ts", // run by the binary's own Bun: fulcrum run /srv/app/server.ts --port N
    cwd: "/srv/app",
    min: 2,
    max: 8,
    basePort: 5001,
    // The unit's TimeoutStopSec must exceed twice this: the drain, then stopping the instances.
    stopTimeout: 10000,
  },
  health: { path: "/health", interval: 5000, timeout: 2000 },
  proxy: { trustProxy: ["10.0.0.0/8"] },
  admin: { port: 9090, token: process.env.FULCRUM_ADMIN_TOKEN },
  log: { format: "json" },
});
