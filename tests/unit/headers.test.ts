import { describe, expect, test } from "bun:test";
import { believedClientIp, forwardRequestHeaders, stripHopByHop, upstreamHost, type ForwardFacts } from "../../src/decide/headers.ts";

const facts = (over: Partial<ForwardFacts> = {}): ForwardFacts => ({
  peerIp: "192.0.2.10",
  peerTrusted: false,
  proto: "http",
  newRequestId: () => "generated-id",
  ...over,
});

describe("request headers to the backend", () => {
  test("are rewritten in place, not copied", () => {
    const incoming = new Headers({ host: "h" });
    expect(forwardRequestHeaders(incoming, facts())).toBe(incoming);
  });

  test("removes hop-by-hop headers and the ones Connection names", () => {
    const out = forwardRequestHeaders(
      new Headers({
        host: "app.example",
        connection: "keep-alive, X-Secret",
        "x-secret": "1",
        "keep-alive": "timeout=5",
        te: "trailers",
        upgrade: "h2c",
        "proxy-authorization": "Basic abc",
        "proxy-connection": "keep-alive",
        "x-kept": "yes",
      }),
      facts(),
    );
    for (const gone of ["connection", "x-secret", "keep-alive", "te", "upgrade", "proxy-authorization", "proxy-connection"]) {
      expect(out.has(gone)).toBe(false);
    }
    expect(out.get("x-kept")).toBe("yes");
  });

  test("appends the client address to X-Forwarded-For", () => {
    expect(forwardRequestHeaders(new Headers({ host: "h" }), facts()).get("x-forwarded-for")).toBe("192.0.2.10");
    const chained = forwardRequestHeaders(new Headers({ host: "h", "x-forwarded-for": "203.0.113.5" }), facts());
    expect(chained.get("x-forwarded-for")).toBe("203.0.113.5, 192.0.2.10");
  });

  test("sets X-Forwarded-Proto and -Host, ignoring an untrusted client's values", () => {
    const out = forwardRequestHeaders(
      new Headers({ host: "app.example", "x-forwarded-proto": "https", "x-forwarded-host": "evil.example" }),
      facts(),
    );
    expect(out.get("x-forwarded-proto")).toBe("http");
    expect(out.get("x-forwarded-host")).toBe("app.example");
  });

  test("keeps X-Forwarded-Proto and -Host from a trusted proxy", () => {
    const out = forwardRequestHeaders(
      new Headers({ host: "internal", "x-forwarded-proto": "https", "x-forwarded-host": "app.example" }),
      facts({ peerTrusted: true }),
    );
    expect(out.get("x-forwarded-proto")).toBe("https");
    expect(out.get("x-forwarded-host")).toBe("app.example");
  });

  test("keeps a client's X-Request-Id, generates one when absent", () => {
    expect(forwardRequestHeaders(new Headers({ host: "h", "x-request-id": "abc" }), facts()).get("x-request-id")).toBe("abc");
    expect(forwardRequestHeaders(new Headers({ host: "h" }), facts()).get("x-request-id")).toBe("generated-id");
  });

  test("preserveHost keeps the client's Host; off, or when the client sent none, the backend's host is sent", () => {
    expect(upstreamHost("app.example", true, "127.0.0.1:5001")).toBe("app.example");
    expect(upstreamHost("app.example", false, "127.0.0.1:5001")).toBe("127.0.0.1:5001");
    expect(upstreamHost(null, true, "127.0.0.1:5001")).toBe("127.0.0.1:5001");
  });
});

describe("response headers to the client", () => {
  test("removes hop-by-hop headers, keeps each Set-Cookie separate", () => {
    const upstream = new Headers({ connection: "x-internal", "x-internal": "1", "keep-alive": "timeout=5", "transfer-encoding": "chunked" });
    upstream.append("set-cookie", "a=1");
    upstream.append("set-cookie", "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT");
    stripHopByHop(upstream);
    const out = upstream;
    expect(out.has("x-internal")).toBe(false);
    expect(out.has("keep-alive")).toBe(false);
    expect(out.has("transfer-encoding")).toBe(false);
    expect(out.getSetCookie()).toEqual(["a=1", "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT"]);
  });
});

describe("client address behind trusted proxies", () => {
  const trusted = (ip: string) => ip.startsWith("10.");
  test("an untrusted peer is the client, whatever X-Forwarded-For says", () => {
    expect(believedClientIp("192.0.2.1", "1.2.3.4", trusted)).toBe("192.0.2.1");
  });
  test("behind trusted proxies, the right-most untrusted hop is the client", () => {
    expect(believedClientIp("10.0.0.1", "1.2.3.4, 198.51.100.7, 10.0.0.9", trusted)).toBe("198.51.100.7");
  });
});
