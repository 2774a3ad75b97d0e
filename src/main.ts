/**
 * Entry point: command line → config → balancer, plus process signals.
 *
 *   bun run src/main.ts [--config FILE] [--port N] [--backend URL ...] [--strategy NAME]
 *                       [--workers N] [--check] [--help] [--version]
 *   bun run src/main.ts status [--url URL] [--token TOKEN] [--watch]
 */
import pkg from "../package.json" with { type: "json" };
import { Balancer, type Role } from "./balancer.ts";
import { runStatus } from "./cli/status.ts";
import { WORKER_ENV, WORKER_PORT_ENV } from "./cluster/protocol.ts";
import { CliError, parseCli, USAGE } from "./config/cli.ts";
import { ConfigError, formatIssue } from "./config/fields.ts";
import { loadConfig } from "./config/load.ts";
import { stateFilePath } from "./runtime/child-registry.ts";
import { Logger } from "./runtime/log.ts";

function fail(message: string): never {
  process.stderr.write(`fulcrum: ${message}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  const argv = Bun.argv.slice(2);
  if (argv[0] === "status") {
    process.exitCode = await runStatus(argv.slice(1), { env: process.env, stdout: process.stdout, stderr: process.stderr });
    return;
  }
  let cli;
  try {
    cli = parseCli(argv);
  } catch (error) {
    if (error instanceof CliError) fail(error.message);
    throw error;
  }
  if (cli.help) return void console.log(USAGE);
  if (cli.version) return void console.log(`fulcrum ${pkg.version} (bun ${Bun.version})`);

  const environment = { cwd: process.cwd(), env: process.env, bunPath: process.execPath };
  let loaded;
  try {
    loaded = await loadConfig(cli, environment);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const issue of error.issues) process.stderr.write(`fulcrum: invalid config: ${formatIssue(issue)}\n`);
    process.exit(1);
  }
  const { config, file } = loaded;
  if (cli.check) {
    console.log(JSON.stringify(config, null, 2));
    console.log(`config OK${file ? `: ${file}` : ""}`);
    return;
  }

  const log = new Logger(config.log);
  let balancer: Balancer | undefined;
  const crash = (what: string) => (error: unknown) => {
    log.error(`${what}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    log.flush();
    balancer?.killInstances();
    process.exit(1);
  };
  process.on("uncaughtException", crash("uncaught exception"));
  process.on("unhandledRejection", crash("unhandled rejection"));

  const workerIndex = process.env[WORKER_ENV];
  const role: Role = workerIndex
    ? { kind: "worker", index: Number(workerIndex), port: Number(process.env[WORKER_PORT_ENV]) }
    : config.cluster.workers > 1
      ? { kind: "primary", workers: config.cluster.workers }
      : { kind: "solo" };

  let stopping = false;
  const shutdown = (signal: string) => {
    // A worker may see Ctrl-C's SIGINT and then its primary's SIGTERM: one graceful stop is enough.
    if (stopping && role.kind === "worker") return;
    if (stopping) {
      log.warn(`${signal} again: exiting now`);
      log.flush();
      balancer?.killInstances();
      process.exit(1);
    }
    stopping = true;
    log.info(`${signal} received`);
    void (balancer?.stop() ?? Promise.resolve()).then(() => process.exit(0));
  };
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGHUP", () => {
    log.info("SIGHUP received: reloading the config");
    void balancer?.reload();
  });
  process.on("SIGUSR2", () => {
    log.info("SIGUSR2 received: rolling restart of managed instances");
    if (balancer?.supervisor) void balancer.supervisor.rollingRestart();
    else log.warn("no managed instances to restart");
  });

  try {
    balancer = await Balancer.start(config, log, {
      reloadConfig: async () => (await loadConfig(cli, environment)).config,
      stateFile: config.instances && role.kind !== "worker" ? stateFilePath(file, environment.cwd) : null,
      role,
      onPrimaryGone: () => shutdown("primary process gone"),
    });
  } catch (error) {
    crash("could not start")(error);
  }
  if (stopping) await balancer?.stop().then(() => process.exit(0));
}

await main();
