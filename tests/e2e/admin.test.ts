/**
 * `/lb-admin` as an operator uses it: bearer-token auth, JSON errors, every
 * mutation visible in `/lb-status` afterwards; config reload by HTTP and SIGHUP.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { cleanupAfterAll, randomBasePort, ROOT, type Running, startBackend, startFulcrum, tempDir, waitFor } from "../helpers/procs.ts";

cleanupAfterAll();

const TOKEN = "correct-horse-battery-staple";
const auth = { authorization: `Bearer ${TOKEN}` };

interface Status {
  total: number;
  strategy: string;
  scaling: { desired: number; lastAction: { reason: string } | null };
  instances: { id: string; url: string; state: string; healthy: boolean; weight: number; managed: boolean }[];
}
const status = async (url: string) => (await (await fetch(`${url}/lb-status`)).json()) as Status;

let a: Running;
let b: Running;
beforeAll(async () => {
  [a, b] = await Promise.all([startBackend("a"), startBackend("b")]);
});

async function staticBalancer(extra: Record<string, unknown> = {}) {
  const dir = tempDir();
  const file = join(dir, "lb.json");
  await Bun.write(file, JSON.stringify({ listen: { port: 0, hostname: "127.0.0.1" }, backends: [a.url], admin: { token: TOKEN }, health: { interval: 60_000 }, ...extra }));
  return { file, lb: await startFulcrum(["--config", file]) };
}

describe("authentication", () => {
  test("without admin.token configured, every admin route answers 403", async () => {
    const lb = await startFulcrum(["--port", "0", "--backend", a.url]);
    const res = await fetch(`${lb.url}/lb-admin/scale`, { method: "POST", headers: auth, body: "{}" });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ error: "admin API disabled: set admin.token in the config" });
    await lb.stop();
  });

  test("no token or a wrong one is a 401 with a Bearer challenge; the right one works", async () => {
    const { lb } = await staticBalancer();
    const none = await fetch(`${lb.url}/lb-admin/backends/b1/drain`, { method: "POST" });
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Bearer realm="fulcrum"');
    const wrong = await fetch(`${lb.url}/lb-admin/backends/b1/drain`, { method: "POST", headers: { authorization: "Bearer nope" } });
    expect(wrong.status).toBe(401);
    const basic = await fetch(`${lb.url}/lb-admin/backends/b1/drain`, { method: "POST", headers: { authorization: `Basic ${btoa(`x:${TOKEN}`)}` } });
    expect(basic.status).toBe(401);
    expect((await status(lb.url)).instances[0]?.state).toBe("healthy"); // nothing happened
    const right = await fetch(`${lb.url}/lb-admin/backends/b1/drain`, { method: "POST", headers: auth });
    expect(right.status).toBe(200);
    await lb.stop();
  });
});

describe("backends", () => {
  test("add, drain and remove a backend; each step shows in /lb-status and in the traffic", async () => {
    const { lb } = await staticBalancer({ strategy: "round-robin" });
    const added = await fetch(`${lb.url}/lb-admin/backends`, { method: "POST", headers: auth, body: JSON.stringify({ url: b.url, weight: 2 }) });
    expect(added.status).toBe(201);
    expect(((await added.json()) as { backend: { id: string; url: string; weight: number } }).backend).toMatchObject({ id: "b2", url: b.url, weight: 2 });
    expect((await status(lb.url)).total).toBe(2);
    const names = new Set<string>();
    for (let i = 0; i < 4; i++) names.add(await (await fetch(lb.url)).text());
    expect(names).toEqual(new Set(["backend a", "backend b"]));

    const drained = await fetch(`${lb.url}/lb-admin/backends/b2/drain`, { method: "POST", headers: auth });
    expect(await drained.json()).toEqual({ id: "b2", state: "draining" });
    expect((await status(lb.url)).instances.find((i) => i.id === "b2")).toMatchObject({ state: "draining", healthy: false });
    for (let i = 0; i < 4; i++) expect(await (await fetch(lb.url)).text()).toBe("backend a");

    const removed = await fetch(`${lb.url}/lb-admin/backends/b2`, { method: "DELETE", headers: auth });
    expect(await removed.json()).toEqual({ removed: "b2" });
    expect((await status(lb.url)).instances.map((i) => i.id)).toEqual(["b1"]);
    await lb.stop();
  });

  test("bad requests get a JSON error that says what is wrong", async () => {
    const { lb } = await staticBalancer();
    const post = (path: string, body: string, method = "POST") => fetch(`${lb.url}${path}`, { method, headers: auth, body });
    const cases: [Response, number, string][] = [
      [await post("/lb-admin/backends", "not json"), 400, "body must be a JSON object"],
      [await post("/lb-admin/backends", "{}"), 400, "url: required, a URL like http://127.0.0.1:3001"],
      [await post("/lb-admin/backends", JSON.stringify({ url: "ftp://x" })), 400, 'url: must start with http:// or https://, got "ftp://x"'],
      [await post("/lb-admin/backends", JSON.stringify({ url: b.url, weight: -1 })), 400, "weight: must be a number >= 0, got -1"],
      [await post("/lb-admin/backends", JSON.stringify({ url: a.url })), 409, `${a.url} is already a backend`],
      [await post("/lb-admin/backends/b9/drain", ""), 404, 'no backend with id "b9"'],
      [await post("/lb-admin/backends/b9", "", "DELETE"), 404, 'no backend with id "b9"'],
      [await post("/lb-admin/scale", JSON.stringify({ desired: 2 })), 409, "no managed instances: `instances` is not configured"],
      [await post("/lb-admin/scale", JSON.stringify({ desired: "many" })), 400, 'desired: must be an integer >= 0, got "many"'],
      [await post("/lb-admin/nothing", ""), 404, "no admin route POST /lb-admin/nothing"],
      [await fetch(`${lb.url}/lb-admin/scale`, { headers: auth }), 405, "use POST"],
    ];
    for (const [res, code, message] of cases) {
      expect({ status: res.status, body: await res.json() }).toEqual({ status: code, body: { error: message } });
    }
    expect((await status(lb.url)).total).toBe(1);
    await lb.stop();
  });
});

describe("scale", () => {
  test("sets the number of managed instances, clamped to min..max", async () => {
    const dir = tempDir();
    const file = join(dir, "lb.json");
    await Bun.write(
      file,
      JSON.stringify({
        listen: { port: 0, hostname: "127.0.0.1" },
        instances: { location: join(ROOT, "examples/backend.ts"), min: 1, max: 3, basePort: randomBasePort(), slowStart: 0 },
        scaling: { checkInterval: 60_000 },
        admin: { token: TOKEN },
      }),
    );
    const lb = await startFulcrum(["--config", file]);
    const res = await fetch(`${lb.url}/lb-admin/scale`, { method: "POST", headers: auth, body: JSON.stringify({ desired: 9 }) });
    expect(await res.json()).toEqual({ desired: 3, clamped: true });
    await waitFor(async () => (await status(lb.url)).instances.filter((i) => i.state === "healthy").length === 3, 15_000, "3 healthy instances");
    const s = await status(lb.url);
    expect(s.scaling.desired).toBe(3);
    expect(s.scaling.lastAction?.reason).toBe("manual: POST /lb-admin/scale");
    expect(lb.stdout.text).toContain("SCALE: UP 1 -> 3 (manual: POST /lb-admin/scale)");
    await lb.stop();
  });
});

describe("reload", () => {
  test("POST /lb-admin/reload applies a changed file; an invalid file changes nothing", async () => {
    const { file, lb } = await staticBalancer({ strategy: "round-robin" });
    const config = JSON.parse(await Bun.file(file).text());
    await Bun.write(file, JSON.stringify({ ...config, backends: [b.url], strategy: "p2c" }));
    const res = await fetch(`${lb.url}/lb-admin/reload`, { method: "POST", headers: auth });
    expect(await res.json()).toEqual({ reloaded: true, changes: [`added ${b.url}`, `removing ${a.url}`] });
    await waitFor(async () => (await status(lb.url)).total === 1, 5000, "old backend removed");
    const s = await status(lb.url);
    expect(s.strategy).toBe("p2c");
    expect(s.instances[0]?.url).toBe(b.url);
    expect(await (await fetch(lb.url)).text()).toBe("backend b");

    await Bun.write(file, JSON.stringify({ ...config, backends: ["nope"] }));
    const bad = await fetch(`${lb.url}/lb-admin/reload`, { method: "POST", headers: auth });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: "config invalid; nothing changed", issues: ['backends[0]: must be a URL like http://127.0.0.1:3001, got "nope"'] });
    expect(await (await fetch(lb.url)).text()).toBe("backend b");
    await lb.stop();
  });

  test("SIGHUP reloads a .ts config without dropping the process or its connections", async () => {
    const dir = tempDir();
    const file = join(dir, "lb.config.ts");
    const write = (backend: string, strategy: string) =>
      Bun.write(file, `import { defineConfig } from "fulcrum";\nexport default defineConfig({ listen: { port: 0 }, backends: ["${backend}"], strategy: "${strategy}" });\n`);
    await write(a.url, "round-robin");
    const lb = await startFulcrum(["--config", file]);
    expect(await (await fetch(lb.url)).text()).toBe("backend a");
    await write(b.url, "weighted");
    const inflight = fetch(`${lb.url}/slow?ms=600`).then(async (r) => [r.status, await r.text()]);
    await Bun.sleep(100);
    lb.proc.kill("SIGHUP");
    await lb.stdout.wait(/config reloaded: added/);
    expect(await inflight).toEqual([200, "slow a"]); // the request in flight to the removed backend finished
    await waitFor(async () => (await fetch(lb.url).then((r) => r.text())) === "backend b", 5000, "traffic to b");
    expect((await status(lb.url)).strategy).toBe("weighted");
    expect(lb.proc.exitCode).toBeNull();
    expect(await lb.stop()).toBe(0);
  });
});
