/**
 * What an edge must keep doing under pressure that throughput runs do not
 * show, for each engine in turn (same fixture backend):
 *
 *   idle   5,000 idle client connections held open: Fulcrum's RSS growth, and
 *          how long a normal request takes meanwhile (median and max of 20);
 *   slow   a client reading a 1 GiB download at about 200 KiB/s for 20 s:
 *          Fulcrum's RSS every 2 s (it must stay flat: the upstream is paused,
 *          not read ahead into memory).
 *
 *   bun bench/edge-limits.ts                       # both engines, both scenarios
 *   bun bench/edge-limits.ts --engines listen --idle 2000 --slow-seconds 10
 *
 * Everything on 127.0.0.1, every process stopped by PID at the end.
 */
import { readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { mkdtempSync } from "node:fs";
import { arg, cleanup, spawnUntil } from "./procs.ts";

const engines = arg("engines", "listen,serve").split(",");
const idleCount = Number(arg("idle", "5000"));
const slowSeconds = Number(arg("slow-seconds", "20"));
const dir = mkdtempSync(join(tmpdir(), "fulcrum-edge-"));

const rssMiB = (pid: number) => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => resolve(socket));
    socket.once("error", reject);
  });
}

async function timedRequest(url: string): Promise<number> {
  const start = performance.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  await res.arrayBuffer();
  return performance.now() - start;
}

async function idle(port: number, pid: number): Promise<string> {
  const url = `http://127.0.0.1:${port}/`;
  for (let i = 0; i < 20; i++) await timedRequest(url);
  const before = rssMiB(pid);
  const sockets: net.Socket[] = [];
  for (let i = 0; i < idleCount; i += 100) sockets.push(...(await Promise.all(Array.from({ length: Math.min(100, idleCount - i) }, () => connect(port)))));
  await Bun.sleep(500);
  const times: number[] = [];
  for (let i = 0; i < 20; i++) times.push(await timedRequest(url));
  const after = rssMiB(pid);
  for (const s of sockets) s.destroy();
  times.sort((a, b) => a - b);
  return `${sockets.length} idle connections: RSS ${before.toFixed(1)} → ${after.toFixed(1)} MiB (+${(after - before).toFixed(1)}); a request meanwhile: median ${(times[10] ?? 0).toFixed(1)} ms, max ${(times[19] ?? 0).toFixed(1)} ms`;
}

async function slow(port: number, pid: number): Promise<string> {
  const socket = await connect(port);
  socket.pause();
  socket.write(`GET /download?bytes=${1024 ** 3} HTTP/1.1\r\nHost: x\r\n\r\n`);
  const samples = [rssMiB(pid)];
  let received = 0;
  // Read ~200 KiB/s: 20 KiB every 100 ms.
  const reader = setInterval(() => {
    let chunk: Buffer | null;
    let taken = 0;
    while (taken < 20 * 1024 && (chunk = socket.read(Math.min(20 * 1024 - taken, 16 * 1024)) as Buffer | null) !== null) taken += chunk.byteLength;
    received += taken;
  }, 100);
  for (let t = 0; t < slowSeconds; t += 2) {
    await Bun.sleep(2000);
    samples.push(rssMiB(pid));
  }
  clearInterval(reader);
  socket.destroy();
  return `slow reader, ${slowSeconds} s at ~200 KiB/s (${(received / 1024 / slowSeconds).toFixed(0)} KiB/s read): RSS every 2 s ${samples.map((s) => s.toFixed(0)).join(" → ")} MiB`;
}

try {
  const backend = await spawnUntil(["bun", "tests/fixtures/backend.ts", "--port", "0", "--name", "a"], /listening on (\d+)/);
  const backendUrl = `http://127.0.0.1:${backend.match[1]}`;
  for (const engine of engines) {
    const file = join(dir, `${engine}.json`);
    writeFileSync(
      file,
      JSON.stringify({ listen: { port: 0, hostname: "127.0.0.1" }, backends: [backendUrl], proxy: { engine, maxConnections: idleCount + 1000, maxBodySize: 2 * 1024 ** 3 }, log: { access: false } }),
    );
    const lb = await spawnUntil(["bun", "run", "src/main.ts", "--config", file], /Load balancer running on port (\d+)/);
    const port = Number(lb.match[1]);
    console.log(`\n### ${engine} engine\n`);
    console.log(`- ${await idle(port, lb.proc.pid)}`);
    console.log(`- ${await slow(port, lb.proc.pid)}`);
    lb.proc.kill("SIGTERM");
    await lb.proc.exited;
  }
} finally {
  cleanup();
}
