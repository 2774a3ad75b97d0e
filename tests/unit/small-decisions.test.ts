import { describe, expect, test } from "bun:test";
import { diffBackends } from "../../src/decide/backend-diff.ts";

describe("reload: static backend changes", () => {
  test("matched by URL: added, removed and reweighted", () => {
    const diff = diffBackends(
      [
        { url: "http://a:1", weight: 1 },
        { url: "http://b:1", weight: 1 },
      ],
      [
        { url: "http://b:1", weight: 3 },
        { url: "http://c:1", weight: 1 },
      ],
    );
    expect(diff).toEqual({ added: [{ url: "http://c:1", weight: 1 }], removed: ["http://a:1"], reweighted: [{ url: "http://b:1", weight: 3 }] });
  });

  test("the same list changes nothing", () => {
    const list = [{ url: "http://a:1", weight: 2 }];
    expect(diffBackends(list, list)).toEqual({ added: [], removed: [], reweighted: [] });
  });
});

import { chooseVictim } from "../../src/decide/victim.ts";

describe("which instance a scale-down stops", () => {
  const c = (name: string, ready: boolean, inflight: number, readySince: number | null) => ({ name, ready, inflight, readySince });
  test("one that is not serving goes first", () => {
    expect(chooseVictim([c("busy", true, 5, 1), c("starting", false, 0, null)])?.name).toBe("starting");
  });
  test("then the least busy", () => {
    expect(chooseVictim([c("a", true, 3, 1), c("b", true, 1, 2), c("c", true, 2, 3)])?.name).toBe("b");
  });
  test("then the newest", () => {
    expect(chooseVictim([c("old", true, 0, 100), c("new", true, 0, 900)])?.name).toBe("new");
  });
  test("nothing to choose from", () => {
    expect(chooseVictim([])).toBeUndefined();
  });
});

import { normalizeContentLength, pathOf, rejectRequest } from "../../src/proxy/serve/request-checks.ts";

describe("request checks at the edge", () => {
  test("the path is kept whether Bun gives an absolute URL or only the path", () => {
    expect(pathOf("http://app.example/a/b?q=1")).toBe("/a/b?q=1");
    expect(pathOf("/keep/this/path?q=1")).toBe("/keep/this/path?q=1");
    expect(pathOf("http://app.example")).toBe("/");
  });
  test("CONNECT is refused", () => {
    expect(rejectRequest("CONNECT", "evil.example:443")?.status).toBe(405);
  });
  test("invalid or repeated Host is refused, valid ones pass", () => {
    for (const bad of ["a b", "a/b", "evil.example@127.0.0.1", "x?y", "x#y", "x\\y", "", "x, evil.example"]) expect(rejectRequest("GET", bad)?.status).toBe(400);
    for (const good of ["app.example", "app.example:8080", "127.0.0.1:3000", "[::1]:4000", "xn--bcher-kva.example"]) expect(rejectRequest("GET", good)).toBeUndefined();
    expect(rejectRequest("GET", null)).toBeUndefined(); // HTTP/1.0 without Host
  });
  test("Content-Length: one value, or identical repeats merged into one", () => {
    expect(normalizeContentLength("5")).toBe("5");
    expect(normalizeContentLength("5, 5")).toBe("5");
    expect(normalizeContentLength("5, 6")).toBeUndefined();
    expect(normalizeContentLength("-1")).toBeUndefined();
    expect(normalizeContentLength("0x10")).toBeUndefined();
  });
});
