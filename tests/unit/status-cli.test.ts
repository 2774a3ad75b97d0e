/**
 * `fulcrum status` arguments and the one fetch behind it, without sockets: an
 * injected fetch plays the balancer (or whatever answers instead of it).
 */
import { describe, expect, test } from "bun:test";
import { fetchStatus, parseStatusArgs, statusEndpoint, type Fetch } from "../../src/cli/status.ts";

const answer = (body: string, init: ResponseInit = {}): Fetch => async () => new Response(body, init);
const STATUS = JSON.stringify({ total: 1, healthy: 1, strategy: "round-robin", uptime: 1, instances: [{ id: "b1", url: "http://a:1", state: "healthy", healthy: true }] });

describe("status arguments", () => {
  test("the default URL is 127.0.0.1 on PORT, or 4000", () => {
    expect(parseStatusArgs([], {}).endpoint).toBe("http://127.0.0.1:4000/lb-status");
    expect(parseStatusArgs([], { PORT: "8080" }).endpoint).toBe("http://127.0.0.1:8080/lb-status");
    expect(() => parseStatusArgs([], { PORT: "abc" })).toThrow('PORT must be an integer between 1 and 65535 to find the balancer, got "abc"; or pass --url');
    expect(parseStatusArgs(["--url", "http://10.0.0.5:9000"], { PORT: "abc" }).endpoint).toBe("http://10.0.0.5:9000/lb-status");
  });

  test("--url: host:port is enough; a path of its own is kept", () => {
    expect(statusEndpoint("localhost:9901")).toBe("http://localhost:9901/lb-status");
    expect(statusEndpoint("https://lb.example.com/")).toBe("https://lb.example.com/lb-status");
    expect(statusEndpoint("http://gw:80/fulcrum/lb-status")).toBe("http://gw/fulcrum/lb-status");
    expect(() => statusEndpoint("ftp://x")).toThrow("--url must start with http:// or https://");
  });

  test("flags, = forms, and mistakes", () => {
    expect(parseStatusArgs(["--url=a:1", "--token", "s3cret", "--watch"], {})).toEqual({ endpoint: "http://a:1/lb-status", token: "s3cret", watch: true, help: false });
    expect(parseStatusArgs(["-w"], {}).watch).toBe(true);
    expect(parseStatusArgs(["--help"], { PORT: "bad" }).help).toBe(true);
    expect(() => parseStatusArgs(["--urls", "x"], {})).toThrow("unknown flag --urls (did you mean --url?); see status --help");
    expect(() => parseStatusArgs(["--token"], {})).toThrow("--token needs a value");
    expect(() => parseStatusArgs(["extra"], {})).toThrow('unexpected argument "extra"');
  });
});

describe("fetching the status", () => {
  const url = "http://127.0.0.1:4000/lb-status";

  test("a status is parsed; the token goes in Authorization", async () => {
    let seen: Headers | undefined;
    const fake: Fetch = async (_url, init) => {
      seen = new Headers(init.headers);
      return new Response(STATUS, { headers: { "content-type": "application/json" } });
    };
    const result = await fetchStatus(url, { fetch: fake, token: "t0k" });
    expect(result.ok && result.view.instances.map((i) => i.id)).toEqual(["b1"]);
    expect(seen?.get("authorization")).toBe("Bearer t0k");
  });

  test("connection refused", async () => {
    const refused: Fetch = async () => {
      throw Object.assign(new TypeError("Unable to connect"), { code: "ECONNREFUSED" });
    };
    expect(await fetchStatus(url, { fetch: refused })).toEqual({
      ok: false,
      message: `cannot reach the balancer at ${url}: connection refused (is Fulcrum running there? pass --url)`,
    });
  });

  test("no answer in time", async () => {
    const silent: Fetch = (_url, init) =>
      new Promise((_resolve, reject) => init.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))));
    const started = performance.now();
    expect(await fetchStatus(url, { fetch: silent, timeoutMs: 50 })).toEqual({ ok: false, message: `cannot reach the balancer at ${url}: no answer within 0.05 s` });
    expect(performance.now() - started).toBeLessThan(1000);
  });

  test("not 200: the status, with a hint where one helps", async () => {
    expect(await fetchStatus(url, { fetch: answer("nope", { status: 404, statusText: "Not Found" }) })).toEqual({
      ok: false,
      message: `the balancer at ${url} answered 404 Not Found (not Fulcrum's status: with admin.port set, pass --url http://HOST:<admin.port>)`,
    });
    expect(await fetchStatus(url, { fetch: answer("", { status: 401, statusText: "Unauthorized" }) })).toMatchObject({ message: expect.stringContaining("401 Unauthorized (pass --token)") });
    expect(await fetchStatus(url, { fetch: answer("", { status: 503 }) })).toMatchObject({ message: `the balancer at ${url} answered 503` });
  });

  test("not JSON, or JSON that is not a status", async () => {
    expect(await fetchStatus(url, { fetch: answer("<html>hi</html>") })).toEqual({ ok: false, message: `${url} did not answer with JSON: is it Fulcrum's /lb-status?` });
    expect(await fetchStatus(url, { fetch: answer('{"status":"ok"}') })).toEqual({ ok: false, message: `${url} answered JSON without an instances list: is it Fulcrum's /lb-status?` });
  });
});
