/**
 * src/serve/static.ts: the chat page's files with the cross-origin isolation headers, single Range requests (what a
 * page's model download sends), 416 for a range past the end, HEAD, and no file outside the mounted folders.
 */
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { sendStaticFile, staticFileOf, type StaticMount } from "../../src/serve/static.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "kvsplit-static-"));
const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
let base = "";
let server: http.Server;

before(async () => {
  mkdirSync(path.join(dir, "web"));
  mkdirSync(path.join(dir, "web", "sub"));
  writeFileSync(path.join(dir, "web", "index.html"), "<!doctype html><title>t</title>");
  writeFileSync(path.join(dir, "web", "model.gguf"), bytes);
  writeFileSync(path.join(dir, "web", ".secret"), "no");
  writeFileSync(path.join(dir, "web", "sub", "inner.js"), "no");
  writeFileSync(path.join(dir, "outside.txt"), "no");
  const mounts: StaticMount[] = [{ prefix: "/", dir: path.join(dir, "web") }];
  server = http.createServer((req, res) => {
    const file = staticFileOf(mounts, new URL(req.url!, "http://x").pathname);
    if (file) sendStaticFile(req, res, file);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

test("/ is index.html, with the isolation headers and its content type", async () => {
  const r = await fetch(`${base}/`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("cross-origin-opener-policy"), "same-origin");
  assert.equal(r.headers.get("cross-origin-embedder-policy"), "require-corp");
  assert.match(r.headers.get("content-type")!, /^text\/html/);
  assert.match(await r.text(), /<title>t<\/title>/);
});

test("single ranges: first bytes, a middle slice, the suffix, an open end; 416 past the end", async () => {
  const get = (range: string) => fetch(`${base}/model.gguf`, { headers: { Range: range } });
  for (const [range, from, to] of [["bytes=0-3", 0, 3], ["bytes=100-199", 100, 199], ["bytes=-10", 990, 999], ["bytes=900-", 900, 999], ["bytes=990-5000", 990, 999]] as const) {
    const r = await get(range);
    assert.equal(r.status, 206, range);
    assert.equal(r.headers.get("content-range"), `bytes ${from}-${to}/1000`, range);
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), bytes.subarray(from, to + 1), range);
  }
  for (const range of ["bytes=1000-", "bytes=5-2", "items=0-1"]) {
    const r = await get(range);
    assert.equal(r.status, 416, range);
    assert.equal(r.headers.get("content-range"), "bytes */1000");
  }
  const whole = await fetch(`${base}/model.gguf`);
  assert.equal(whole.status, 200);
  assert.equal(whole.headers.get("accept-ranges"), "bytes");
  assert.equal((await whole.arrayBuffer()).byteLength, 1000);
  const head = await fetch(`${base}/model.gguf`, { method: "HEAD" });
  assert.equal(head.headers.get("content-length"), "1000");
});

test("nothing outside the mounted folder: no dotfiles, no subfolders, no ..", async () => {
  for (const p of ["/.secret", "/sub/inner.js", "/..%2Foutside.txt", "/%2e%2e/outside.txt", "/nothing.js"]) {
    assert.equal((await fetch(`${base}${p}`)).status, 404, p);
  }
});
