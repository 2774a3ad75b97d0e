/**
 * Loader for llhttp's request test corpus (tests/fixtures/llhttp/*.md, llhttp 9.4.2,
 * commit 01e105a). No dependencies: it reimplements the part of mdgator (markdown-it
 * headings, HTML comments, fenced blocks) and of test/md-test.ts that the corpus uses.
 *
 * Each case is a heading below the top-level one that holds fenced blocks: a
 * `<!-- meta={...} -->` comment before the ```http block, the ```http block itself
 * and a ```log block of the llhttp callbacks the test fixture printed.
 *
 * What it extracts:
 * - `input`: the ```http block turned into bytes as md-test.ts does (trailing newline
 *   dropped, `\` + newline dropped, newlines to CRLF, then `\r \n \t \f \xNN` and
 *   octal escapes). A char <= 0xFF is one byte (latin1), so `\xff` is the byte 0xFF.
 *   No request case uses a `${...}` expression; the loader throws if one appears
 *   instead of evaluating code.
 * - `messages`: one per `message begin`. Consecutive spans of one kind concatenate
 *   (the fixture may print a span in pieces). A header is the header_field spans up
 *   to `header_field complete` plus the header_value spans up to `header_value
 *   complete` (so an obs-fold value is its pieces joined without the CRLF, as a
 *   callback user sees it). Header spans after `headers complete` are trailers. Body
 *   is every span[body] of the message (`=cr` / `=lf` spans are the bytes 0x0D /
 *   0x0A); for chunked bodies that is the decoded chunk data, framing excluded.
 *   `flags` / `contentLength` come from the `headers complete` line.
 *   A message cut short by an error or by the end of input keeps what was reported
 *   so far, including a header whose value was not complete, and has complete=false.
 * - `error`: the `error code=C reason="..."` line. Codes 21-23 are llhttp pauses
 *   (22: CONNECT/Upgrade, 23: PRI/HTTP2), not rejections: see caseOutcome().
 * - `finish`: llhttp_finish()'s result in request-finish cases (0 safe, 2 unsafe).
 *
 * What it ignores: `... complete` lines for method/url/protocol/version, `reset`,
 * `pause` (pausing.md: the fixture pauses in a callback and resumes, the messages are
 * unchanged), `skip body` (the one meta.skipBody case: on_headers_complete returned 1,
 * so llhttp read no body despite Content-Length), `chunk header len=N` /
 * `chunk complete`, chunk extension spans, and the offsets of every line except the
 * error. Regex expectation lines (`/.../`) are rejected: none occur in this corpus.
 *
 * Encoding caveat: llhttp's fixture received the input as a command-line argument,
 * which Node encodes as UTF-8, so the log's offsets count UTF-8 bytes. That differs
 * from `input` only in the five cases with a char >= 0x80 (`text` keeps the string;
 * utf8Input() gives the bytes llhttp saw). In those the bytes before any error offset
 * are the same, and the accepted ones put the char in a header value, where llhttp
 * allows every byte 0x80-0xFF (obs-text), so the verdicts hold for `input` too.
 * Chars above 0xFF (only "δ" in uri.md) have no latin1 byte and become their UTF-8
 * bytes, which is what llhttp saw.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface LlhttpMessage {
  method: string;
  url: string;
  /** Usually "HTTP"; "RTSP" and "ICE" also occur. "" when the request line has none (HTTP/0.9). */
  protocol: string;
  /** "1.1" from span[version]; for HTTP/0.9 ("GET /") from `headers complete v=0/9`. */
  version: string;
  headers: [string, string][];
  /** Fields after the last chunk. */
  trailers: [string, string][];
  /** Concatenated body spans (for chunked: the decoded chunk data). */
  body: Uint8Array;
  /** Saw "message complete". */
  complete: boolean;
  /** llhttp's F_* bits (LLHTTP_FLAGS) from `headers complete`; undefined if it never came. */
  flags?: number;
  contentLength?: number;
}

export interface LlhttpCase {
  /** Fixture file name, e.g. "content-length.md". */
  file: string;
  /** 1-based line of the case's heading (md-test.ts prints the same number). */
  line: number;
  /** Heading text as written, backticks included. */
  name: string;
  /** Enclosing headings, outermost first. */
  groups: string[];
  type: string;
  meta: Record<string, unknown>;
  /** Normalised input string, before byte encoding. */
  text: string;
  /** Exact bytes: latin1 of `text` (see the encoding caveat above). */
  input: Uint8Array;
  /** The ```log block, one entry per line (`\t`, `\f` replaced as md-test.ts does). */
  log: string[];
  /** In order. */
  messages: LlhttpMessage[];
  error?: { code: number; reason: string; offset: number };
  finish?: number;
}

export const LLHTTP_FIXTURE_DIR = join(import.meta.dir, "..", "fixtures", "llhttp");

/** In md-test.ts's order. */
export const LLHTTP_REQUEST_FILES = [
  "sample.md",
  "lenient-headers.md",
  "lenient-header-value-relaxed.md",
  "lenient-version.md",
  "method.md",
  "uri.md",
  "connection.md",
  "content-length.md",
  "transfer-encoding.md",
  "invalid.md",
  "finish.md",
  "pausing.md",
  "pipelining.md",
] as const;

/** llhttp's `flags` bits (src/llhttp/constants.ts FLAGS). */
export const LLHTTP_FLAGS = {
  CONNECTION_KEEP_ALIVE: 1 << 0,
  CONNECTION_CLOSE: 1 << 1,
  CONNECTION_UPGRADE: 1 << 2,
  CHUNKED: 1 << 3,
  UPGRADE: 1 << 4,
  CONTENT_LENGTH: 1 << 5,
  SKIPBODY: 1 << 6,
  TRAILING: 1 << 7,
  TRANSFER_ENCODING: 1 << 9,
} as const;

/** Types run with no leniency flag. request-finish only adds an llhttp_finish() call. */
const STRICT_TYPES = new Set(["request", "request-finish"]);

let cache: LlhttpCase[] | undefined;

export function loadLlhttpRequestCases(): LlhttpCase[] {
  cache ??= LLHTTP_REQUEST_FILES.flatMap((file) =>
    parseLlhttpMarkdown(file, readFileSync(join(LLHTTP_FIXTURE_DIR, file), "utf8")),
  );
  return cache.slice();
}

/**
 * Cases llhttp runs with no leniency flag: what a strict parser should match. Two knobs
 * of llhttp's fixture remain: meta.pause (pausing.md; no effect on the messages) and
 * meta.skipBody (one case, content-length.md "Content-Length reset when no body is
 * received": the body is skipped as for a HEAD response, so a parser without that
 * option reads the second request as body instead).
 */
export function strictCases(): LlhttpCase[] {
  return loadLlhttpRequestCases().filter((c) => STRICT_TYPES.has(c.type));
}

/**
 * Cases run with the leniency flag their type names (request-lenient-*). Most are
 * inputs strict llhttp rejects; a few fail even with the flag on (their log says so).
 */
export function lenientCases(): LlhttpCase[] {
  return loadLlhttpRequestCases().filter((c) => !STRICT_TYPES.has(c.type) && c.type.startsWith("request-"));
}

/**
 * accept: no error and every message complete. incomplete: no error, but the input
 * ends inside a message (llhttp waits for more bytes). upgrade: llhttp stopped on
 * purpose (CONNECT, Upgrade, PRI) and leaves the remaining bytes to the caller.
 * reject: any other error.
 */
export function caseOutcome(c: LlhttpCase): "accept" | "incomplete" | "upgrade" | "reject" {
  if (c.error === undefined) return c.messages.every((m) => m.complete) ? "accept" : "incomplete";
  return c.error.code >= 21 && c.error.code <= 23 ? "upgrade" : "reject";
}

/** The bytes llhttp's fixture actually parsed (argv is UTF-8); the log's offsets index these. */
export function utf8Input(c: LlhttpCase): Uint8Array {
  return new TextEncoder().encode(c.text);
}

/** Same rule as md-test.ts, then chars to bytes. Exported for the loader's own tests. */
export function decodeHttpBlock(block: string): { text: string; bytes: Uint8Array } {
  let input = block.replace(/\n$/, "");
  input = input.replace(/\\(\r\n|\r|\n)/g, "");
  input = input.replace(/\r\n|\r|\n/g, "\r\n");
  input = input.replace(/\\r/g, "\r");
  input = input.replace(/\\n/g, "\n");
  input = input.replace(/\\t/g, "\t");
  input = input.replace(/\\f/g, "\f");
  input = input.replace(/\\x([0-9a-fA-F]+)/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  input = input.replace(/\\([0-7]{1,3})/g, (_, digits: string) => String.fromCharCode(parseInt(digits, 8)));
  // md-test.ts evaluates these with vm; none occur, so refuse rather than run code from a fixture.
  if (/\$\{(.+?)\}/.test(input)) throw new Error("`${...}` expressions in llhttp inputs are not supported");
  return { text: input, bytes: latin1Bytes(input) };
}

function latin1Bytes(s: string): Uint8Array {
  const out: number[] = [];
  const utf8 = new TextEncoder();
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    if (cp <= 0xff) out.push(cp);
    else out.push(...utf8.encode(ch));
  }
  return Uint8Array.from(out);
}

// --- Markdown: the subset of markdown-it + mdgator the corpus needs ---

interface Heading {
  name: string;
  line: number;
  depth: number;
  parent: Heading | undefined;
  blocks: Map<string, string[]>;
  meta: Map<string, Record<string, unknown>[]>;
}

type Block =
  | { kind: "heading"; level: number; text: string; line: number }
  | { kind: "fence"; info: string; content: string }
  | { kind: "html"; content: string };

/** Block tokens in order: ATX and setext headings, fenced blocks, HTML comment blocks. */
function scanBlocks(text: string): Block[] {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  const blocks: Block[] = [];
  let paragraph: { text: string[]; line: number } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    const fence = /^( {0,3})(`{3,}|~{3,})(.*)$/.exec(line);
    if (fence && !(fence[2]?.startsWith("`") && fence[3]?.includes("`"))) {
      paragraph = undefined;
      const indent = fence[1]?.length ?? 0;
      const marker = fence[2] ?? "";
      const body: string[] = [];
      let j = i + 1;
      for (; j < lines.length; j++) {
        const l = lines[j] ?? "";
        const close = /^ {0,3}(`{3,}|~{3,})[ \t]*$/.exec(l);
        if (close && close[1]?.[0] === marker[0] && (close[1]?.length ?? 0) >= marker.length) break;
        // markdown-it strips up to the opening fence's indent from each content line.
        body.push(l.replace(new RegExp(`^ {0,${indent}}`), ""));
      }
      blocks.push({ kind: "fence", info: (fence[3] ?? "").trim(), content: body.map((l) => l + "\n").join("") });
      i = j; // an unclosed fence runs to the end of the file, as in markdown-it
      continue;
    }
    const atx = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/.exec(line);
    if (atx) {
      paragraph = undefined;
      blocks.push({ kind: "heading", level: atx[1]?.length ?? 1, text: (atx[2] ?? "").trim(), line: i });
      continue;
    }
    if (/^ {0,3}<!--/.test(line)) {
      paragraph = undefined;
      const body: string[] = [];
      let j = i;
      for (; j < lines.length; j++) {
        body.push(lines[j] ?? "");
        if ((lines[j] ?? "").includes("-->")) break;
      }
      blocks.push({ kind: "html", content: body.map((l) => l + "\n").join("") });
      i = j;
      continue;
    }
    if (line.trim() === "") {
      paragraph = undefined;
      continue;
    }
    const setext = /^ {0,3}(=+|-+)[ \t]*$/.exec(line);
    if (setext && paragraph) {
      blocks.push({
        kind: "heading",
        level: setext[1]?.startsWith("=") ? 1 : 2,
        text: paragraph.text.join("\n").trim(),
        line: paragraph.line,
      });
      paragraph = undefined;
      continue;
    }
    if (paragraph) paragraph.text.push(line.trim());
    else paragraph = { text: [line.trim()], line: i };
  }
  return blocks;
}

/** mdgator's rules: a fence belongs to the innermost heading if that is not a root; a meta comment goes to the next fence. */
function collectTests(text: string): Heading[] {
  const stack: Heading[] = [];
  const all: Heading[] = [];
  let metadata: Record<string, unknown> | undefined;
  for (const block of scanBlocks(text)) {
    if (block.kind === "heading") {
      metadata = undefined;
      const depth = block.level - 1;
      while (stack.length > 0 && (stack[stack.length - 1]?.depth ?? -1) >= depth) stack.pop();
      const heading: Heading = {
        name: block.text,
        line: block.line + 1,
        depth,
        parent: stack[stack.length - 1],
        blocks: new Map(),
        meta: new Map(),
      };
      stack.push(heading);
      all.push(heading);
    } else if (block.kind === "fence" && stack.length > 1) {
      const current = stack[stack.length - 1];
      if (!current) continue;
      push(current.blocks, block.info, block.content);
      if (metadata !== undefined) {
        push(current.meta, block.info, metadata);
        metadata = undefined;
      }
    } else if (block.kind === "html" && stack.length >= 1) {
      const match = /<!--\s+meta=(.*)\s+-->/.exec(block.content);
      if (match) metadata = JSON.parse(match[1] ?? "") as Record<string, unknown>;
    }
  }
  // mdgator runs subgroups before a group's own tests; file order is easier to read.
  return all.filter((h) => h.blocks.size > 0);
}

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Parse one corpus file; exported so the loader's tests can feed it small documents. */
export function parseLlhttpMarkdown(file: string, text: string): LlhttpCase[] {
  return collectTests(text).map((h) => {
    const where = `${file}:${h.line}`;
    const http = h.blocks.get("http");
    const log = h.blocks.get("log");
    // The same checks md-test.ts makes.
    if (http?.length !== 1) throw new Error(`${where}: expected one http block`);
    if (log?.length !== 1) throw new Error(`${where}: expected one log block`);
    const meta = h.meta.get("http")?.[0];
    if (meta === undefined || typeof meta.type !== "string") throw new Error(`${where}: missing meta type`);
    const groups: string[] = [];
    for (let p = h.parent; p; p = p.parent) groups.unshift(p.name);
    const { text: normalised, bytes } = decodeHttpBlock(http[0] ?? "");
    const lines = (log[0] ?? "").replace(/\\t/g, "\t").replace(/\\f/g, "\f").split("\n").slice(0, -1);
    return {
      file,
      line: h.line,
      name: h.name,
      groups,
      type: meta.type,
      meta,
      text: normalised,
      input: bytes,
      log: lines,
      ...replayLog(lines, where),
    };
  });
}

// --- Log replay ---

type Field = [string, string];

interface Draft {
  msg: LlhttpMessage;
  body: string;
  field: string | undefined;
  value: string | undefined;
  afterHead: boolean;
}

const SPAN = /^off=(\d+) len=(\d+) span\[([a-z_.]+)\]=(?:"(.*)"|(cr|lf))$/;
const HEADERS = /^off=\d+ headers complete method=\d+ v=(\d+)\/(\d+) flags=([0-9a-f]+) content_length=(\d+)$/;
const ERROR = /^off=(\d+) error code=(\d+) reason="(.*)"$/;
const IGNORED =
  /^off=\d+ (?:(?:method|url|protocol|version|chunk_extension_name|chunk_extension_value|chunk) complete|reset|pause|skip body|chunk header len=\d+)$/;

function replayLog(
  lines: string[],
  where: string,
): Pick<LlhttpCase, "messages" | "error" | "finish"> {
  const messages: LlhttpMessage[] = [];
  let error: LlhttpCase["error"];
  let finish: number | undefined;
  let d: Draft | undefined;

  const flushHeader = (cur: Draft) => {
    if (cur.field === undefined && cur.value === undefined) return;
    const pair: Field = [cur.field ?? "", cur.value ?? ""];
    (cur.afterHead ? cur.msg.trailers : cur.msg.headers).push(pair);
    cur.field = cur.value = undefined;
  };
  const close = () => {
    if (!d) return;
    flushHeader(d);
    d.msg.body = latin1Bytes(d.body);
    d = undefined;
  };
  const current = (line: string): Draft => {
    if (!d) throw new Error(`${where}: "${line}" outside a message`);
    return d;
  };

  for (const line of lines) {
    if (line.startsWith("/")) throw new Error(`${where}: regex log lines are not supported`);
    let m: RegExpExecArray | null;
    if (/^off=\d+ message begin$/.test(line)) {
      close();
      const msg: LlhttpMessage = {
        method: "",
        url: "",
        protocol: "",
        version: "",
        headers: [],
        trailers: [],
        body: new Uint8Array(0),
        complete: false,
      };
      messages.push(msg);
      d = { msg, body: "", field: undefined, value: undefined, afterHead: false };
    } else if ((m = SPAN.exec(line))) {
      const cur = current(line);
      const value = m[4] ?? (m[5] === "cr" ? "\r" : "\n");
      switch (m[3]) {
        case "method":
          cur.msg.method += value;
          break;
        case "url":
          cur.msg.url += value;
          break;
        case "protocol":
          cur.msg.protocol += value;
          break;
        case "version":
          cur.msg.version += value;
          break;
        case "header_field":
          if (cur.value !== undefined) flushHeader(cur); // a value that never completed (lenient input)
          cur.field = (cur.field ?? "") + value;
          break;
        case "header_value":
          cur.value = (cur.value ?? "") + value;
          break;
        case "body":
          cur.body += value;
          break;
        case "chunk_extension_name":
        case "chunk_extension_value":
          break;
        default:
          throw new Error(`${where}: unknown span "${m[3]}"`);
      }
    } else if (/^off=\d+ header_field complete$/.test(line)) {
      current(line);
    } else if (/^off=\d+ header_value complete$/.test(line)) {
      const cur = current(line);
      cur.value ??= "";
      flushHeader(cur);
    } else if ((m = HEADERS.exec(line))) {
      const cur = current(line);
      flushHeader(cur);
      cur.afterHead = true;
      if (cur.msg.version === "") cur.msg.version = `${m[1]}.${m[2]}`;
      cur.msg.flags = parseInt(m[3] ?? "", 16);
      cur.msg.contentLength = Number(m[4]);
    } else if (/^off=\d+ message complete$/.test(line)) {
      current(line).msg.complete = true;
      close();
    } else if ((m = ERROR.exec(line))) {
      if (error) throw new Error(`${where}: two error lines`);
      error = { code: Number(m[2]), reason: m[3] ?? "", offset: Number(m[1]) };
      close();
    } else if ((m = /^off=NULL finish=(\d+)$/.exec(line))) {
      finish = Number(m[1]);
    } else if (!IGNORED.test(line)) {
      throw new Error(`${where}: unrecognised log line "${line}"`);
    }
  }
  close();
  return { messages, ...(error ? { error } : {}), ...(finish !== undefined ? { finish } : {}) };
}
