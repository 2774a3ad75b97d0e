/**
 * One large transfer over a raw HTTP/1.1 connection, for bench/harness.ts.
 *
 *   bun bench/transfer.ts <download|upload|echo> <port> <bytes> [--timeout S] [--stall S]
 *
 *   download  GET  /download?bytes=N     reads and counts the N-byte response body
 *   upload    POST /upload  (N bytes)    the backend answers the byte count it saw
 *   echo      POST /echo    (N bytes)    sends and reads at the same time (full duplex):
 *                                        the echoed bytes are read while the upload goes on
 *
 * A raw socket rather than fetch(): the send side honours backpressure chunk by
 * chunk, the receive side counts bytes as they arrive (content-length, chunked or
 * read-to-close), nothing is ever buffered whole, and sending and receiving are
 * truly concurrent. Prints one JSON line: status, bytes sent/received, seconds,
 * MiB/s, ok (byte counts verified), stalled (no progress for --stall seconds),
 * when the first response body byte came and how much had been sent by then
 * (for echo: a small number means the proxy really streams both ways at once),
 * timedOut, error, and the client's own peak RSS.
 */
const args = Bun.argv.slice(2);
const mode = args[0];
const port = Number(args[1]);
const total = Number(args[2]);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const timeoutMs = flag("timeout", 120) * 1000;
const stallMs = flag("stall", 10) * 1000;
if (!["download", "upload", "echo"].includes(mode ?? "") || !(port > 0) || !(total > 0)) {
  console.error("usage: bun bench/transfer.ts <download|upload|echo> <port> <bytes> [--timeout S] [--stall S]");
  process.exit(2);
}

const CHUNK = 64 * 1024;
const payload = new Uint8Array(CHUNK).fill(121);
const CR = 13;
const LF = 10;

/** Incremental HTTP/1.1 response reader that counts body bytes and keeps at most a short text prefix. */
class ResponseReader {
  status = 0;
  bodyBytes = 0;
  bodyText = "";
  complete = false;
  framing: "length" | "chunked" | "close" = "close";
  #head: Uint8Array = new Uint8Array(0);
  #inHead = true;
  #left = 0;
  #chunkState: "size" | "data" | "data-end" | "trailer" = "size";
  #line = "";
  readonly #decoder = new TextDecoder();

  feed(buf: Uint8Array): void {
    if (this.complete) return;
    if (this.#inHead) {
      const all = new Uint8Array(this.#head.length + buf.length);
      all.set(this.#head);
      all.set(buf, this.#head.length);
      const end = findHeadEnd(all);
      if (end < 0) {
        if (all.length > 64 * 1024) throw new Error("response head over 64 KiB");
        this.#head = all;
        return;
      }
      this.#inHead = false;
      this.#head = new Uint8Array(0);
      this.#parseHead(this.#decoder.decode(all.subarray(0, end)));
      buf = all.subarray(end + 4);
      if (this.framing === "length" && this.#left === 0) this.complete = true;
    }
    this.#body(buf);
  }

  /** The peer closed: a read-to-close body ends here. */
  closed(): void {
    if (!this.#inHead && this.framing === "close") this.complete = true;
  }

  #parseHead(text: string): void {
    const lines = text.split("\r\n");
    this.status = Number(lines[0]?.split(" ")[1] ?? 0);
    let length: number | undefined;
    let chunked = false;
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim().toLowerCase();
      if (name === "content-length") length = Number(value);
      if (name === "transfer-encoding" && value.includes("chunked")) chunked = true;
    }
    if (chunked) this.framing = "chunked";
    else if (length !== undefined) {
      this.framing = "length";
      this.#left = length;
    }
  }

  #count(part: Uint8Array): void {
    this.bodyBytes += part.length;
    if (this.bodyText.length < 256) this.bodyText += this.#decoder.decode(part.subarray(0, 256));
  }

  #body(buf: Uint8Array): void {
    if (this.framing === "close") return this.#count(buf);
    if (this.framing === "length") {
      const take = Math.min(this.#left, buf.length);
      this.#count(buf.subarray(0, take));
      this.#left -= take;
      if (this.#left === 0) this.complete = true;
      return;
    }
    let i = 0;
    while (i < buf.length && !this.complete) {
      if (this.#chunkState === "data") {
        const take = Math.min(this.#left, buf.length - i);
        this.#count(buf.subarray(i, i + take));
        i += take;
        this.#left -= take;
        if (this.#left === 0) this.#chunkState = "data-end";
        continue;
      }
      // The other states read one line (chunk size, the CRLF after data, trailers).
      const nl = buf.indexOf(LF, i);
      if (nl < 0) {
        this.#line += this.#decoder.decode(buf.subarray(i));
        if (this.#line.length > 4096) throw new Error("chunk line over 4 KiB");
        return;
      }
      const line = (this.#line + this.#decoder.decode(buf.subarray(i, nl))).trim();
      this.#line = "";
      i = nl + 1;
      if (this.#chunkState === "data-end") this.#chunkState = "size";
      else if (this.#chunkState === "size") {
        const size = parseInt(line.split(";")[0] ?? "", 16);
        if (!Number.isFinite(size)) throw new Error(`bad chunk size line: ${JSON.stringify(line)}`);
        if (size === 0) this.#chunkState = "trailer";
        else {
          this.#left = size;
          this.#chunkState = "data";
        }
      } else if (line === "") this.complete = true; // trailer section ends with an empty line
    }
  }
}

function findHeadEnd(buf: Uint8Array): number {
  for (let i = buf.indexOf(CR); i >= 0 && i + 3 < buf.length; i = buf.indexOf(CR, i + 1)) {
    if (buf[i + 1] === LF && buf[i + 2] === CR && buf[i + 3] === LF) return i;
  }
  return -1;
}

const reader = new ResponseReader();
const path = mode === "download" ? `/download?bytes=${total}` : mode === "upload" ? "/upload" : "/echo";
const head =
  mode === "download"
    ? `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUser-Agent: fulcrum-bench\r\n\r\n`
    : `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUser-Agent: fulcrum-bench\r\n` +
      `Content-Type: application/octet-stream\r\nContent-Length: ${total}\r\n\r\n`;

let sent = 0;
/** When the first response body byte arrived, and how much had been sent by then (full-duplex evidence). */
let firstByte: { ms: number; sent: number } | undefined;
let lastProgress = performance.now();
let peakRss = process.memoryUsage.rss();
let error: string | undefined;
let closed = false;
let wakeDrain: (() => void) | undefined;
let finish!: (why: "complete" | "closed" | "stalled" | "timeout" | "error") => void;
const finished = new Promise<"complete" | "closed" | "stalled" | "timeout" | "error">((resolve) => (finish = resolve));

const started = performance.now();
const socket = await Bun.connect({
  hostname: "127.0.0.1",
  port,
  socket: {
    data(_s, buf) {
      lastProgress = performance.now();
      try {
        reader.feed(buf);
      } catch (e) {
        error = (e as Error).message;
        finish("error");
        return;
      }
      if (firstByte === undefined && reader.bodyBytes > 0) firstByte = { ms: performance.now() - started, sent };
      if (reader.complete && (mode === "download" || sent === total || reader.status !== 200)) finish("complete");
    },
    drain() {
      wakeDrain?.();
    },
    end() {
      closed = true;
      reader.closed();
      finish(reader.complete ? "complete" : "closed");
    },
    close() {
      closed = true;
      reader.closed();
      finish(reader.complete ? "complete" : "closed");
      wakeDrain?.();
    },
    error(_s, e) {
      error = e.message;
      finish("error");
      wakeDrain?.();
    },
  },
});

/** Writes all of `data`, waiting for `drain` whenever the kernel buffer is full. */
async function writeAll(data: Uint8Array): Promise<boolean> {
  let off = 0;
  while (off < data.length) {
    if (closed || settled) return false;
    const n = socket.write(off === 0 ? data : data.subarray(off));
    if (n > 0) {
      off += n;
      if (data !== headBytes) sent += n;
      lastProgress = performance.now();
    }
    if (n < 0) return false;
    if (off < data.length) await new Promise<void>((resolve) => (wakeDrain = resolve));
  }
  return true;
}

let settled = false;
const headBytes = new TextEncoder().encode(head);
const watchdog = setInterval(() => {
  const now = performance.now();
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  if (now - started > timeoutMs) finish("timeout");
  else if (now - lastProgress > stallMs) finish("stalled");
}, 200);

void (async () => {
  if (!(await writeAll(headBytes))) return;
  if (mode === "download") return;
  while (sent < total && !settled) {
    const n = Math.min(CHUNK, total - sent);
    if (!(await writeAll(n === CHUNK ? payload : payload.subarray(0, n)))) return;
  }
  // Upload: the answer comes after the last byte; it may already be here.
  if (reader.complete) finish("complete");
})();

const outcome = await finished;
settled = true;
wakeDrain?.();
const seconds = (performance.now() - started) / 1000;
clearInterval(watchdog);
socket.end();

const expectedBody = mode === "upload" ? String(total) : undefined;
const bodyOk =
  mode === "upload" ? reader.bodyText.trim() === expectedBody : reader.bodyBytes === total;
const ok = outcome === "complete" && reader.status === 200 && bodyOk && (mode === "download" || sent === total);
const moved = mode === "download" ? reader.bodyBytes : mode === "upload" ? sent : Math.min(sent, reader.bodyBytes);
console.log(
  JSON.stringify({
    mode,
    port,
    bytes: total,
    outcome,
    ok,
    status: reader.status,
    framing: reader.framing,
    sent,
    received: reader.bodyBytes,
    answer: mode === "upload" ? reader.bodyText.trim().slice(0, 80) : undefined,
    seconds: Math.round(seconds * 1000) / 1000,
    firstByteMs: firstByte ? Math.round(firstByte.ms * 10) / 10 : null,
    sentAtFirstByte: firstByte?.sent ?? null,
    mibPerSec: ok ? Math.round((moved / 2 ** 20 / seconds) * 10) / 10 : null,
    stalled: outcome === "stalled",
    timedOut: outcome === "timeout",
    error,
    clientPeakRssMiB: Math.round((peakRss / 2 ** 20) * 10) / 10,
  }),
);
process.exit(0);
