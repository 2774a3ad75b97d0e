/**
 * The chaos proof, for longer: runs tests/e2e/chaos-proof.test.ts (a static
 * backend SIGKILLed every 2 s and back 1 s later, two SIGHUP reloads with
 * backend changes, an admin scale-down, a backend answering 500 until its
 * circuit opens, 16 clients looping idempotent GETs) for `--duration` seconds
 * and prints its figures: requests sent, failed (and why), retried, circuit
 * openings, the timeline, and whether anything leaked. The test itself is the
 * scenario, so the suite and the bench cannot drift apart.
 *
 *   bun bench/chaos-proof.ts                  # 30 s
 *   bun bench/chaos-proof.ts --duration 60 --engine serve
 */
import { arg } from "./procs.ts";

const durationS = Number(arg("duration", "30"));
const engine = arg("engine", "listen");
const run = Bun.spawn(["bun", "test", "tests/e2e/chaos-proof.test.ts"], {
  cwd: `${import.meta.dir}/..`,
  env: { ...process.env, CHAOS_PROOF_MS: String(durationS * 1000), FULCRUM_TEST_ENGINE: engine === "listen" ? undefined : engine },
  stdout: "pipe",
  stderr: "pipe",
});
const [out, err, code] = await Promise.all([new Response(run.stdout).text(), new Response(run.stderr).text(), run.exited]);
const text = out + err;
const from = text.indexOf("chaos proof:");
const ends = ["\n(", "\ntests/"].map((end) => text.indexOf(end, from)).filter((i) => i > from);
const figures = from < 0 ? "" : text.slice(from, ends.length > 0 ? Math.min(...ends) : undefined);
console.log(`### Chaos proof, ${durationS} s, engine ${engine}\n`);
console.log(figures.trim() || "(no figures: the run did not get that far)");
console.log(`\n${code === 0 ? "PASS: no failed request outside the sick backend's own 500s, nothing leaked" : "FAIL:"}`);
if (code !== 0) console.log(text.split("\n").filter((l) => /error:|Expected|Received|\(fail\)/.test(l)).join("\n"));
process.exit(code ?? 1);
