/**
 * For the docs tests: the fenced code blocks of a Markdown page, and loading a
 * config text through Fulcrum's own loader (src/config/load.ts), as
 * `fulcrum --config FILE` would, with no environment overrides.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import type { ResolvedConfig } from "../../src/config/schema.ts";

export const ROOT = join(import.meta.dir, "../..");

export interface CodeBlock {
  /** The info string's first word: `ts`, `yaml`, `json`, `sh`, or "" for none. */
  readonly lang: string;
  /** The info string's other words: `fragment`, `not-config`. */
  readonly flags: readonly string[];
  readonly text: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
}

/** Fenced blocks (```lang flags ... ```) of `markdown`, in order. */
export function codeBlocks(markdown: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i]?.match(/^```(.*)$/);
    if (!open) continue;
    const [lang = "", ...flags] = (open[1] ?? "").trim().split(/\s+/).filter(Boolean);
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i] ?? "");
    blocks.push({ lang, flags, text: `${body.join("\n")}\n`, line: start + 1 });
  }
  return blocks;
}

/** Languages whose blocks are configs unless marked otherwise, and the file extension each loads as. */
export const CONFIG_LANGS: Readonly<Record<string, string>> = { ts: ".ts", typescript: ".ts", js: ".js", json: ".json", yaml: ".yaml", yml: ".yaml" };

/** A temporary folder, removed by `dispose`. */
export function tempDir(prefix: string): { path: string; dispose(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, dispose: () => rmSync(path, { recursive: true, force: true }) };
}

/** Loads and validates a config file through Fulcrum's loader; throws ConfigError like `fulcrum --check` would fail. */
export async function loadFile(path: string): Promise<ResolvedConfig> {
  const cli = { configPath: path, overrides: [], backends: [], check: true, help: false, version: false };
  const { config } = await loadConfig(cli, { cwd: ROOT, env: {}, bunPath: process.execPath });
  return config;
}

let written = 0;

/** Writes `text` as a config file of type `ext` in `dir` and loads it. */
export function loadText(dir: string, text: string, ext: string): Promise<ResolvedConfig> {
  const path = join(dir, `example-${++written}${ext}`);
  writeFileSync(path, text);
  return loadFile(path);
}
