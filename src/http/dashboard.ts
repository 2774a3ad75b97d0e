/**
 * `GET /lb-dashboard`: one self-contained page (dashboard/page.html with its
 * script, dashboard/page.js, inlined), built once at startup. Both files are
 * imported as text, so `bun build --compile` embeds them in the binary. The
 * page talks only to `/lb-events` on the same origin; its Content-Security-Policy
 * says so, and allows exactly the inline script and style it ships.
 */
import pageSource from "./dashboard/page.html" with { type: "text" };
import script from "./dashboard/page.js" with { type: "text" };

const SCRIPT_SLOT = "<script>/* page.js */</script>";

function sha256(text: string): string {
  return `'sha256-${new Bun.CryptoHasher("sha256").update(text).digest("base64")}'`;
}

function build(): { html: string; csp: string } {
  // bun-types declares *.html imports as HTML bundles; with { type: "text" } Bun gives the file's text.
  const source = pageSource as unknown;
  if (typeof source !== "string" || !source.includes(SCRIPT_SLOT)) throw new Error("dashboard page: expected page.html as text, with a script slot");
  const style = source.slice(source.indexOf("<style>") + "<style>".length, source.indexOf("</style>"));
  const html = source.replace(SCRIPT_SLOT, () => `<script>${script}</script>`);
  const csp = [
    "default-src 'none'",
    `script-src ${sha256(script)}`,
    `style-src ${sha256(style)}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  return { html, csp };
}

const page = build();

export function dashboardResponse(): Response {
  return new Response(page.html, {
    headers: {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-cache",
      "content-security-policy": page.csp,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
    },
  });
}
