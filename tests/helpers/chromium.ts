/**
 * Headless Chromium driven over the DevTools protocol
 * (https://chromedevtools.github.io/devtools-protocol/) with Bun's own
 * WebSocket client: no puppeteer, no playwright. One browser per call to
 * `launchChromium`, in a fresh profile directory, killed by PID in `close()`.
 * This file does not import bun:test, so scripts can use it too.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

/** The Chromium binary, or undefined when none is installed. `CHROMIUM=/path` picks one (and only that one). */
export function findChromium(): string | undefined {
  const candidates = process.env.CHROMIUM ? [process.env.CHROMIUM] : ["/usr/bin/chromium", Bun.which("chromium"), Bun.which("chromium-browser")];
  return candidates.find((path): path is string => typeof path === "string" && path !== "" && existsSync(path));
}

/** How a caller starts processes (tests pass spawnTracked, so cleanup covers the browser too). */
export type Spawn = (cmd: string[]) => { proc: Subprocess; stderr: { wait(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray> } };

const CALL_TIMEOUT_MS = 15_000;

/** Flags known to work as root in a container. */
function chromiumArgs(profile: string): string[] {
  return [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    `--user-data-dir=${profile}`,
    "--remote-debugging-port=0",
    "about:blank",
  ];
}

export interface Browser {
  readonly pid: number;
  /** Opens `url` in a new tab of `width` × `height` CSS pixels. */
  open(url: string, viewport?: Viewport): Promise<Page>;
  /** Asks the browser to quit (it ends its helper processes), kills it by PID if it has not within 5 s, removes its profile. */
  close(): Promise<void>;
}

export interface Viewport {
  readonly width: number;
  readonly height: number;
  readonly mobile?: boolean;
}

export async function launchChromium(binary: string, spawn: Spawn): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), "fulcrum-chromium-"));
  const { proc, stderr } = spawn([binary, ...chromiumArgs(profile)]);
  const close = async () => {
    await Promise.race([proc.exited, Bun.sleep(5000)]);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    await proc.exited;
    rmSync(profile, { recursive: true, force: true });
  };
  try {
    const match = await stderr.wait(/DevTools listening on (ws:\/\/\S+)/, 30_000);
    const cdp = await Cdp.connect(match[1] as string);
    return {
      pid: proc.pid,
      open: (url, viewport = { width: 1280, height: 900 }) => Page.open(cdp, url, viewport),
      close: async () => {
        await cdp.send("Browser.close").catch(() => undefined);
        cdp.close();
        await close();
      },
    };
  } catch (error) {
    proc.kill("SIGKILL");
    await close();
    throw error;
  }
}

/** One WebSocket to the browser; page commands go to their session (flat mode). */
class Cdp {
  readonly #ws: WebSocket;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void; timer: Timer }>();
  /** Event listeners by session id. */
  readonly #listeners = new Map<string, (method: string, params: Record<string, unknown>) => void>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.addEventListener("message", (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: { message: string }; method?: string; params?: Record<string, unknown>; sessionId?: string };
      if (message.method && message.sessionId) this.#listeners.get(message.sessionId)?.(message.method, message.params ?? {});
      const waiter = message.id === undefined ? undefined : this.#pending.get(message.id);
      if (!waiter || message.id === undefined) return;
      this.#pending.delete(message.id);
      clearTimeout(waiter.timer);
      if (message.error) waiter.reject(new Error(`DevTools: ${message.error.message}`));
      else waiter.resolve(message.result);
    });
    ws.addEventListener("close", () => {
      for (const waiter of this.#pending.values()) waiter.reject(new Error("DevTools connection closed"));
      this.#pending.clear();
    });
  }

  static connect(url: string): Promise<Cdp> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const timer = setTimeout(() => reject(new Error(`DevTools: no connection to ${url}`)), CALL_TIMEOUT_MS);
      ws.addEventListener("open", () => {
        clearTimeout(timer);
        resolve(new Cdp(ws));
      });
      ws.addEventListener("error", () => reject(new Error(`DevTools: cannot connect to ${url}`)));
    });
  }

  send<T>(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`DevTools: ${method} did not answer within ${CALL_TIMEOUT_MS} ms`));
      }, CALL_TIMEOUT_MS);
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      this.#ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }

  /** Events of one page session. */
  listen(sessionId: string, listener: (method: string, params: Record<string, unknown>) => void): void {
    this.#listeners.set(sessionId, listener);
  }

  close(): void {
    this.#ws.close();
  }
}

export class Page {
  readonly #cdp: Cdp;
  readonly #session: string;
  /** What went wrong in the page so far: uncaught exceptions, console errors, browser log errors (CSP violations among them). */
  readonly errors: string[] = [];

  private constructor(cdp: Cdp, session: string) {
    this.#cdp = cdp;
    this.#session = session;
    cdp.listen(session, (method, params) => {
      if (method === "Runtime.exceptionThrown") {
        const details = params.exceptionDetails as { text: string; exception?: { description?: string } };
        this.errors.push(details.exception?.description ?? details.text);
      }
      if (method === "Runtime.consoleAPICalled" && params.type === "error") this.errors.push(`console.error: ${JSON.stringify(params.args)}`);
      if (method === "Log.entryAdded") {
        const entry = params.entry as { level: string; text: string; url?: string };
        if (entry.level === "error") this.errors.push(`${entry.text}${entry.url ? ` (${entry.url})` : ""}`);
      }
    });
  }

  static async open(cdp: Cdp, url: string, viewport: Viewport): Promise<Page> {
    const { targetId } = await cdp.send<{ targetId: string }>("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await cdp.send<{ sessionId: string }>("Target.attachToTarget", { targetId, flatten: true });
    const page = new Page(cdp, sessionId);
    await page.setViewport(viewport);
    await page.#send("Page.enable");
    await page.#send("Runtime.enable");
    await page.#send("Log.enable");
    await page.#send("Page.navigate", { url });
    return page;
  }

  #send<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    return this.#cdp.send<T>(method, params, this.#session);
  }

  setViewport({ width, height, mobile = false }: Viewport): Promise<unknown> {
    return this.#send("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: 1, mobile });
  }

  /** Renders the page as for a reader who prefers a light or dark colour scheme. */
  setColorScheme(scheme: "light" | "dark"): Promise<unknown> {
    return this.#send("Emulation.setEmulatedMedia", { features: [{ name: "prefers-color-scheme", value: scheme }] });
  }

  /** Evaluates `expression` in the page and returns its (JSON-able) value; a thrown error rejects. */
  async evaluate<T>(expression: string): Promise<T> {
    const reply = await this.#send<{ result: { value?: T }; exceptionDetails?: { text: string; exception?: { description?: string } } }>("Runtime.evaluate", {
      expression,
      returnByValue: true,
      awaitPromise: true,
    });
    if (reply.exceptionDetails) throw new Error(`in the page: ${reply.exceptionDetails.exception?.description ?? reply.exceptionDetails.text}`);
    return reply.result.value as T;
  }

  /** Saves a PNG of the whole page (or only what the viewport shows) to `file`. */
  async screenshot(file: string, { fullPage = true } = {}): Promise<void> {
    const { data } = await this.#send<{ data: string }>("Page.captureScreenshot", { format: "png", captureBeyondViewport: fullPage });
    await Bun.write(file, Buffer.from(data, "base64"));
  }

  /** A key press as the keyboard sends it (Tab moves the focus, Enter activates a focused button). */
  async press(key: "Tab" | "Enter"): Promise<void> {
    const code = key === "Tab" ? 9 : 13;
    const text = key === "Enter" ? { text: "\r" } : {};
    await this.#send("Input.dispatchKeyEvent", { type: "keyDown", key, code: key, windowsVirtualKeyCode: code, ...text });
    await this.#send("Input.dispatchKeyEvent", { type: "keyUp", key, code: key, windowsVirtualKeyCode: code });
  }
}
