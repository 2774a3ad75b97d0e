/**
 * The deployment examples of docs/deploy.md hang together:
 *
 * - examples/fulcrum.service: `systemd-analyze verify` finds nothing to say
 *   (run against a scratch root holding stand-ins for the unit's executables
 *   and the system's targets, so that it checks the unit, not this machine's
 *   /usr/local/bin; skipped with a message when systemd-analyze is absent),
 *   the settings a drain needs are there, and TimeoutStopSec outlasts a
 *   graceful stop of examples/host/lb.config.ts;
 * - examples/kubernetes/: the manifests parse, have the right kinds, and the
 *   readiness probe, ports, config path and grace period agree with the config
 *   in the ConfigMap (which loads through Fulcrum's own loader) and the Dockerfile.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { loadFile, loadText, ROOT, tempDir } from "../helpers/docs.ts";

const scratch = tempDir("fulcrum-docs-deploy-");
afterAll(() => scratch.dispose());

/** Bounds of a graceful stop: the drain, then stopping the instances, each up to stopTimeout (10 s without instances). */
const DEFAULT_DRAIN_MS = 10_000;

// ---------------------------------------------------------------- systemd

/** `[Section]` → key → values (a key may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = line.match(/^\[(.+)\]$/);
    if (section) {
      current = new Map();
      sections.set(section[1] as string, current);
      continue;
    }
    const eq = line.indexOf("=");
    if (!current || eq < 0) throw new Error(`not a unit line: ${line}`);
    const key = line.slice(0, eq).trim();
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}

/** systemd's time span (`30`, `30s`, `1min 30s`, `500ms`) in seconds. */
function seconds(span: string): number {
  const units: Record<string, number> = { "": 1, s: 1, sec: 1, ms: 0.001, m: 60, min: 60, h: 3600 };
  let total = 0;
  for (const m of span.matchAll(/(\d+(?:\.\d+)?)\s*([a-z]*)/g)) {
    const unit = units[m[2] as string];
    if (unit === undefined) throw new Error(`unknown time unit in ${span}`);
    total += Number(m[1]) * unit;
  }
  return total;
}

const unitPath = join(ROOT, "examples/fulcrum.service");
const unitText = readFileSync(unitPath, "utf8");
const unit = parseUnit(unitText);
const service = unit.get("Service") ?? new Map<string, string[]>();
const one = (key: string) => service.get(key)?.at(-1);

/** Runs `systemd-analyze verify` on `text` as /etc/systemd/system/fulcrum.service in a scratch root. */
function verify(text: string, name: string): { code: number; output: string } {
  const root = join(scratch.path, name);
  mkdirSync(join(root, "etc/systemd/system"), { recursive: true });
  writeFileSync(join(root, "etc/systemd/system/fulcrum.service"), text);
  // Stand-ins for the executables the unit names, so that verify checks the unit's paths, not this machine's.
  for (const key of ["ExecStart", "ExecReload", "ExecStartPre", "ExecStop"]) {
    for (const command of service.get(key) ?? []) {
      const exe = command.replace(/^[-@:+!]+/, "").split(/\s+/)[0] as string;
      mkdirSync(join(root, dirname(exe)), { recursive: true });
      writeFileSync(join(root, exe), "#!/bin/sh\n");
      chmodSync(join(root, exe), 0o755);
    }
  }
  // The targets every service depends on (sysinit.target, ...), from this machine.
  const targets = join(root, "usr/lib/systemd/system");
  mkdirSync(targets, { recursive: true });
  for (const file of readdirSync(SYSTEM_UNITS as string)) if (file.endsWith(".target")) copyFileSync(join(SYSTEM_UNITS as string, file), join(targets, file));
  const run = Bun.spawnSync([SYSTEMD_ANALYZE as string, "verify", `--root=${root}`, "fulcrum.service"], { stdout: "pipe", stderr: "pipe" });
  return { code: run.exitCode, output: `${run.stdout.toString()}${run.stderr.toString()}`.trim() };
}

const SYSTEMD_ANALYZE = Bun.which("systemd-analyze");
const SYSTEM_UNITS = ["/usr/lib/systemd/system", "/lib/systemd/system"].find((d) => existsSync(join(d, "sysinit.target")));
const canVerify = Boolean(SYSTEMD_ANALYZE && SYSTEM_UNITS);
if (!canVerify) console.log("systemd-analyze or the system's unit files not found: skipping systemd-analyze verify of examples/fulcrum.service");

describe("examples/fulcrum.service", () => {
  test.skipIf(!canVerify)("systemd-analyze verify finds nothing to complain about", () => {
    expect(verify(unitText, "good")).toEqual({ code: 0, output: "" });
  });

  test.skipIf(!canVerify)("and it would: a bad setting or a missing executable is reported", () => {
    expect(verify(unitText.replace("KillMode=mixed", "KillMode=bogus"), "bad-setting").output).toContain("kill mode");
    const missing = verify(unitText.replace("ExecReload=/bin/kill", "ExecReload=/no/such/kill"), "bad-path");
    expect(missing.output).toContain("/no/such/kill");
  });

  test("restarts on failure, reloads with SIGHUP, stops with SIGTERM to Fulcrum alone", () => {
    expect(one("Restart")).toBe("on-failure");
    expect(one("ExecReload")).toBe("/bin/kill -HUP $MAINPID");
    expect(one("KillSignal")).toBe("SIGTERM");
    // mixed: SIGTERM to the main process only, so instances are drained by Fulcrum, not signalled by systemd.
    expect(one("KillMode")).toBe("mixed");
    expect(unit.get("Install")?.get("WantedBy")).toEqual(["multi-user.target"]);
  });

  test("runs the compiled binary on the host config, and TimeoutStopSec outlasts a graceful stop of it", async () => {
    const [exe, ...args] = (one("ExecStart") ?? "").split(/\s+/);
    expect(exe).toStartWith("/");
    // package.json's build writes dist/fulcrum.
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: { build: string } };
    expect(basename(pkg.scripts.build.match(/--outfile (\S+)/)?.[1] ?? "")).toBe(basename(exe ?? ""));
    const configFlag = args.indexOf("--config");
    expect(basename(args[configFlag + 1] ?? "")).toBe("lb.config.ts");
    const config = await loadFile(join(ROOT, "examples/host/lb.config.ts"));
    const stopMs = config.instances?.stopTimeout ?? DEFAULT_DRAIN_MS;
    expect(seconds(one("TimeoutStopSec") ?? "0")).toBeGreaterThan((2 * stopMs) / 1000);
  });
});

// ---------------------------------------------------------------- Kubernetes

type Obj = Record<string, any>;
const K8S = join(ROOT, "examples/kubernetes");
const manifests = readdirSync(K8S)
  .filter((f) => f.endsWith(".yaml"))
  .sort()
  .map((file) => ({ file, doc: Bun.YAML.parse(readFileSync(join(K8S, file), "utf8")) as Obj }));
const byKind = (kind: string) => {
  const found = manifests.filter((m) => m.doc.kind === kind);
  expect(found.length, `one ${kind}`).toBe(1);
  return found[0]?.doc as Obj;
};

describe("examples/kubernetes", () => {
  test("the manifests parse and are a ConfigMap, a Deployment and a Service", () => {
    expect(manifests.map((m) => [m.file, m.doc.apiVersion, m.doc.kind])).toEqual([
      ["configmap.yaml", "v1", "ConfigMap"],
      ["deployment.yaml", "apps/v1", "Deployment"],
      ["service.yaml", "v1", "Service"],
    ]);
  });

  test("the config in the ConfigMap loads, and the Deployment runs it with readiness on /lb-health at the port that serves it", async () => {
    const configMap = byKind("ConfigMap");
    const deployment = byKind("Deployment");
    const pod = deployment.spec.template.spec as Obj;
    const [container] = pod.containers as Obj[];
    expect(container).toBeDefined();

    // --config names a key of the ConfigMap, in the folder the ConfigMap is mounted at.
    const args = container?.args as string[];
    const configPath = args[args.indexOf("--config") + 1] as string;
    const mount = (container?.volumeMounts as Obj[]).find((m) => configPath.startsWith(`${m.mountPath}/`)) as Obj;
    const volume = (pod.volumes as Obj[]).find((v) => v.name === mount?.name) as Obj;
    expect(volume?.configMap?.name).toBe(configMap.metadata.name);
    const key = configPath.slice(mount.mountPath.length + 1);
    expect(Object.keys(configMap.data)).toContain(key);
    const config = await loadText(scratch.path, configMap.data[key], `.${key.split(".").pop()}`);

    // /lb-health is on admin.port when that is set, else on the listen port.
    const ports = new Map((container?.ports as Obj[]).map((p) => [p.name as string, p.containerPort as number]));
    const port = (p: string | number) => (typeof p === "number" ? p : ports.get(p));
    const probe = container?.readinessProbe?.httpGet as Obj;
    expect(probe?.path).toBe("/lb-health");
    expect(port(probe?.port)).toBe(config.admin.port ?? config.listen.port);
    expect(ports.get("http")).toBe(config.listen.port);
  });

  test("the grace period covers the preStop pause, the drain and stopping the instances", async () => {
    const configMap = byKind("ConfigMap");
    const pod = byKind("Deployment").spec.template.spec as Obj;
    const [key, text] = Object.entries(configMap.data as Record<string, string>)[0] as [string, string];
    const config = await loadText(scratch.path, text, `.${key.split(".").pop()}`);
    const preStop = (pod.containers[0].lifecycle.preStop.exec.command as string[]).join(" ");
    const pause = Number(preStop.match(/sleep (\d+)$/)?.[1]);
    expect(pause).toBeGreaterThan(0);
    const stopS = (config.instances?.stopTimeout ?? DEFAULT_DRAIN_MS) / 1000;
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(pause + 2 * stopS);
  });

  test("the Deployment selects its pods, and the Service sends to their http port", () => {
    const deployment = byKind("Deployment");
    const service = byKind("Service");
    const labels = deployment.spec.template.metadata.labels as Record<string, string>;
    expect(labels).toMatchObject(deployment.spec.selector.matchLabels);
    expect(labels).toMatchObject(service.spec.selector);
    const names = (deployment.spec.template.spec.containers[0].ports as Obj[]).map((p) => p.name);
    for (const p of service.spec.ports as Obj[]) expect(names).toContain(p.targetPort);
    // The admin port (status, metrics, admin API) stays off the Service.
    expect((service.spec.ports as Obj[]).map((p) => p.targetPort)).not.toContain("admin");
  });

  test("the Dockerfile puts the binary and the app where the Deployment and the config expect them", async () => {
    const dockerfile = readFileSync(join(K8S, "Dockerfile"), "utf8");
    const copies = [...dockerfile.matchAll(/^COPY (\S+) (\S+)$/gm)].map((m) => ({ from: m[1] as string, to: m[2] as string }));
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: { build: string } };
    const built = pkg.scripts.build.match(/--outfile (\S+)/)?.[1];
    for (const { from } of copies) expect(from === built || existsSync(join(ROOT, from)), `COPY ${from}`).toBe(true);
    const entry = JSON.parse(dockerfile.match(/^ENTRYPOINT (.*)$/m)?.[1] ?? "[]") as string[];
    expect(copies.find((c) => c.from === built)?.to).toBe(entry.at(-1));
    const [key, text] = Object.entries(byKind("ConfigMap").data as Record<string, string>)[0] as [string, string];
    const config = await loadText(scratch.path, text, `.${key.split(".").pop()}`);
    const app = config.instances?.command.at(-1) ?? "(no instances)";
    expect(copies.map((c) => c.to)).toContain(app);
  });
});
