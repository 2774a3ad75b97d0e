/**
 * /lb-dashboard in a real browser: headless Chromium, driven over the DevTools
 * protocol (tests/helpers/chromium.ts), reading the rendered DOM while traffic
 * flows. Skipped, with a message saying why, only when Chromium is not
 * installed (CI installs it: .ci/run). Screenshots go to the test's temp dir;
 * `bun docs/dashboard-screenshot.ts` makes the README's.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { findChromium, launchChromium, type Page } from "../helpers/chromium.ts";
import { runLoad } from "../helpers/load.ts";
import { cleanupAfterAll, randomBasePort, ROOT, spawnTracked, startBackend, startFulcrum, tempDir, waitFor } from "../helpers/procs.ts";

cleanupAfterAll();

const chromium = findChromium();
if (!chromium) {
  const where = process.env.CHROMIUM ? `not found at CHROMIUM=${process.env.CHROMIUM}` : "not installed (apt-get install chromium, or set CHROMIUM=/path/to/chromium)";
  console.warn(`SKIPPED tests/e2e/dashboard-browser.test.ts: chromium is ${where}`);
}

/** Reads the page: text of the first match of a selector, null when nothing matches. */
const textOf = (page: Page, selector: string) => page.evaluate<string | null>(`document.querySelector(${JSON.stringify(selector)})?.textContent ?? null`);
const cellOf = (page: Page, id: string, field: string) => textOf(page, `#instances tr[data-id="${id}"] [data-field="${field}"]`);
const numberIn = (text: string | null) => Number((text ?? "").replace(/[^\d.]/g, "") || Number.NaN);
const rowIds = (page: Page) => page.evaluate<string[]>(`[...document.querySelectorAll("#instances tbody tr")].map((r) => r.dataset.id)`);

describe.skipIf(!chromium)("/lb-dashboard in headless Chromium", () => {
  test("shows every instance, follows the traffic, marks a killed backend unhealthy, shows a scale-up, reconnects after a restart", async () => {
    const [a, b, c] = await Promise.all([startBackend("a"), startBackend("b"), startBackend("c")]);
    const dir = tempDir();
    const config = (extra: Record<string, unknown>) => {
      const file = join(dir, `lb-${Math.random().toString(36).slice(2)}.json`);
      const base = { listen: { port: 0, hostname: "127.0.0.1" }, health: { interval: 250, fall: 1 }, log: { access: false } };
      return Bun.write(file, JSON.stringify({ ...base, ...extra })).then(() => file);
    };
    const lb = await startFulcrum([
      "--config",
      await config({
        backends: [a.url, b.url, c.url],
        instances: { location: join(ROOT, "examples/backend.ts"), min: 1, max: 3, basePort: randomBasePort(), slowStart: 0 },
        scaling: { checkInterval: 60_000 },
        admin: { token: "t" },
      }),
    ]);
    const browser = await launchChromium(chromium as string, spawnTracked);
    const load = new AbortController();
    let traffic: ReturnType<typeof runLoad> | undefined;
    try {
      const page = await browser.open(`${lb.url}/lb-dashboard`, { width: 1280, height: 900 });
      await waitFor(async () => (await textOf(page, "#connection-text")) === "Live", 15_000, "the page to go live");
      await waitFor(async () => (await rowIds(page)).join() === "b1,b2,b3,i1", 10_000, "every instance listed");
      await waitFor(async () => (await cellOf(page, "i1", "state")) === "✓healthy", 10_000, "i1 healthy");
      expect(await cellOf(page, "b1", "id")).toBe(`b1${a.url}static`);
      expect(await cellOf(page, "i1", "id")).toMatch(/^i1http:\/\/127\.0\.0\.1:\d+managed$/);

      // Numbers move while traffic flows.
      const before = numberIn(await cellOf(page, "b1", "totalRequests"));
      traffic = runLoad(`${lb.url}/slow?ms=20`, 6, 30_000, load.signal);
      await waitFor(async () => numberIn(await cellOf(page, "b1", "totalRequests")) > before + 20, 10_000, "b1's request count to grow");
      await waitFor(async () => numberIn(await textOf(page, "#rps")) > 0, 10_000, "a request rate above 0");
      await waitFor(async () => /^\d+(\.\d)? ms$/.test((await textOf(page, "#p99")) ?? ""), 10_000, "a p99");
      const rpsPath = () => page.evaluate<string>(`document.querySelector("#chart-rps path.rps").getAttribute("d")`);
      await waitFor(async () => (await rpsPath()).split("L").length >= 3, 10_000, "the rate chart to draw a line through 3 points");

      // A killed backend shows as unhealthy, in words.
      await c.stop("SIGKILL");
      await waitFor(async () => (await cellOf(page, "b3", "state"))?.includes("unhealthy"), 10_000, "b3 shown unhealthy");
      expect(await cellOf(page, "b3", "healthy")).toBe("✕no");
      expect(await page.evaluate<string>(`document.querySelector('#instances tr[data-id="b3"] .state').dataset.state`)).toBe("unhealthy");
      expect(await textOf(page, "#healthy")).toBe("3 of 4");

      // A scale-up shows in the scaling block, the instances chart and the table.
      const scale = await fetch(`${lb.url}/lb-admin/scale`, { method: "POST", headers: { authorization: "Bearer t" }, body: JSON.stringify({ desired: 3 }) });
      expect(scale.status).toBe(200);
      await waitFor(async () => (await textOf(page, "#chart-instances .legend")) === "desired 3running 3", 15_000, "3 instances desired and running");
      expect(await rowIds(page)).toEqual(["b1", "b2", "b3", "i1", "i2", "i3"]);
      expect(await textOf(page, "#scale-last")).toStartWith("▲ Up 1 → 3: manual: POST /lb-admin/scale.");
      const desiredPath = await page.evaluate<string>(`document.querySelector("#chart-instances path.desired").getAttribute("d")`);
      expect(desiredPath).toContain("V"); // a step

      // Keyboard: Tab reaches the time-window buttons, Enter presses one.
      for (let i = 0; i < 10 && (await page.evaluate<string | null>("document.activeElement?.dataset?.window ?? null")) !== "60"; i++) await page.press("Tab");
      await page.press("Enter");
      expect(await textOf(page, "#window-label")).toBe("minute");
      expect(await page.evaluate<string>(`document.querySelector('[data-window="60"]').getAttribute("aria-pressed")`)).toBe("true");

      const shots = tempDir();
      await page.screenshot(join(shots, "dashboard.png"));
      // On a phone the page reflows instead of scrolling sideways.
      await page.setViewport({ width: 390, height: 844, mobile: true });
      await Bun.sleep(300);
      expect(await page.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
      await page.screenshot(join(shots, "dashboard-phone.png"));
      console.log(`dashboard screenshots: ${shots}/dashboard.png, dashboard-phone.png`);
      await page.setViewport({ width: 1280, height: 900 });
      expect(page.errors).toEqual([]);

      load.abort();
      await traffic;

      // SIGTERM with the dashboard open: Fulcrum exits at once, and the page says it is gone.
      const stopping = performance.now();
      expect(await lb.stop()).toBe(0);
      expect(performance.now() - stopping).toBeLessThan(5000);
      await waitFor(async () => (await textOf(page, "#connection-text"))?.startsWith("Disconnected: the balancer is shutting down"), 5000, "the page to say so");
      expect(await page.evaluate<string>("document.querySelector('#connection').dataset.state")).toBe("down");

      // A balancer on the same port again: the page reconnects by itself and shows the new pool.
      const again = await startFulcrum(["--config", await config({ listen: { port: lb.port, hostname: "127.0.0.1" }, backends: [a.url, b.url] })]);
      await waitFor(async () => (await textOf(page, "#connection-text")) === "Live", 20_000, "the page to reconnect");
      await waitFor(async () => (await rowIds(page)).join() === "b1,b2", 5000, "the new pool");
      await again.stop();
    } finally {
      load.abort();
      await traffic;
      await browser.close();
    }
  }, 90_000);
});
