/**
 * Every config example in docs/*.md loads and validates through Fulcrum's own
 * loader (src/config/load.ts: the file types, the original autoscaler's flat
 * keys, the "fulcrum" module for `.ts` files, then src/config/validate.ts).
 *
 * A fenced block in a config language (ts, js, json, yaml) is a whole config
 * unless its info string says otherwise:
 *   ```yaml fragment     part of a config (a section, a line), not loadable alone
 *   ```yaml not-config   another tool's file in that language (Prometheus, Kubernetes, an API answer)
 * Both are skipped by name, so a whole config cannot be skipped by accident.
 * Also: migrating.md's translation of the original autoscaler's flat
 * config.yaml into Fulcrum's keys resolves to exactly what the flat file does.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { basename, join } from "node:path";
import { ConfigError } from "../../src/config/fields.ts";
import { CONFIG_LANGS, codeBlocks, loadText, ROOT, tempDir } from "../helpers/docs.ts";

const MARKS = new Set(["fragment", "not-config"]);
const dir = tempDir("fulcrum-docs-examples-");
afterAll(() => dir.dispose());

const pages = [...new Bun.Glob("docs/*.md").scanSync({ cwd: ROOT })].sort();
const found = await Promise.all(pages.map(async (page) => ({ page, blocks: codeBlocks(await Bun.file(join(ROOT, page)).text()) })));

describe("config examples in docs/ validate", () => {
  test("there are whole configs to check", () => {
    const whole = found.flatMap(({ blocks }) => blocks.filter((b) => b.lang in CONFIG_LANGS && !b.flags.some((f) => MARKS.has(f))));
    expect(whole.length).toBeGreaterThanOrEqual(4);
    const configuration = found.find((f) => f.page === "docs/configuration.md");
    expect(configuration?.blocks.filter((b) => b.lang in CONFIG_LANGS && b.flags.length === 0).length).toBeGreaterThanOrEqual(4);
  });

  for (const { page, blocks } of found) {
    for (const block of blocks) {
      if (!(block.lang in CONFIG_LANGS)) continue;
      const name = `${basename(page)}:${block.line} (${[block.lang, ...block.flags].join(" ")})`;
      const unknown = block.flags.filter((f) => !MARKS.has(f));
      if (unknown.length > 0) {
        test(name, () => {
          throw new Error(`unknown mark ${unknown.join(", ")}: use "fragment" or "not-config"`);
        });
        continue;
      }
      if (block.flags.length > 0) continue; // marked: skipped on purpose
      test(`${name} loads and validates`, async () => {
        try {
          await loadText(dir.path, block.text, CONFIG_LANGS[block.lang] as string);
        } catch (error) {
          if (error instanceof ConfigError) throw new Error(`${page}:${block.line}: ${error.message}`);
          throw error;
        }
      });
    }
  }
});

describe("docs/migrating.md", () => {
  test("the autoscaler's flat config.yaml and its translation into Fulcrum's keys resolve to the same config", async () => {
    const blocks = found.find((f) => f.page === "docs/migrating.md")?.blocks.filter((b) => b.lang === "yaml" && b.flags.length === 0) ?? [];
    const flat = blocks.find((b) => b.text.includes("minInstances:"));
    const nested = blocks.find((b) => b.text.startsWith("instances:"));
    expect(flat && nested).toBeTruthy();
    const [a, b] = await Promise.all([loadText(dir.path, flat?.text ?? "", ".yaml"), loadText(dir.path, nested?.text ?? "", ".yaml")]);
    expect(a.instances?.min).toBe(2);
    expect(a.health.interval).toBe(5000);
    expect(a).toEqual(b);
  });
});
