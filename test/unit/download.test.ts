/**
 * Model downloads against node:http servers on 127.0.0.1 (ephemeral ports; no network needed): hub redirects, cache
 * hits without requests, resume after a dropped connection, truncated bodies, 404s, unreachable and unresolvable
 * hosts, servers that ignore Range, size and sha256 checks, and `kvsplit tokenize -m hf:...` end to end.
 * After every failure the cache holds no file under the final name (at most the resumable .part and its sidecar).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { defaultCacheDir, hfCachePath, partPaths, urlCachePath } from "../../src/download/cache.js";
import { DownloadError, downloadFile, parseContentRange, type DownloadProgress } from "../../src/download/download.js";
import { cachedModelPath, hfFileUrl, ModelSpecError, parseModelSpec, resolveModelPath } from "../../src/download/resolve.js";
import { synthToFile } from "../../src/gguf/synth.js";
import { REPO_ROOT } from "../helpers/shared.js";

let dir = "";
before(() => {
  dir = mkdtempSync(path.join(tmpdir(), "kvsplit-download-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

let cacheCounter = 0;
function freshCache(): string {
  return path.join(dir, `cache-${++cacheCounter}`);
}

/** Deterministic bytes standing in for a model file. */
function payload(n: number, seed = 7): Buffer {
  const out = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

interface Seen {
  url: string;
  headers: http.IncomingHttpHeaders;
}

interface TestServer {
  base: string;
  seen: Seen[];
  close(): Promise<void>;
}

async function startServer(handler: (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void): Promise<TestServer> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? "", headers: req.headers });
    handler(req, res, seen.length);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface ServeOptions {
  /** Answer every request with 200 and the whole body. */
  ignoreRange?: boolean;
  /** Send only this many bytes of the body (of what this response should carry), then cut the connection. */
  cutAfter?: number;
  /** Send this many body bytes, then stall (no end). */
  stallAfter?: number;
  etag?: string;
}

/** Serve `body` honouring `Range: bytes=N-` with 206 (unless told otherwise), optionally misbehaving. */
function serveBytes(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, o: ServeOptions = {}): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
  const start = m && !o.ignoreRange ? Number(m[1]) : 0;
  if (start >= body.length && m && !o.ignoreRange) {
    res.writeHead(416, { "content-range": `bytes */${body.length}` });
    res.end();
    return;
  }
  const headers: http.OutgoingHttpHeaders = { "content-length": body.length - start, "accept-ranges": "bytes" };
  if (o.etag) headers.etag = o.etag;
  if (start > 0) headers["content-range"] = `bytes ${start}-${body.length - 1}/${body.length}`;
  res.writeHead(start > 0 ? 206 : 200, headers);
  const rest = body.subarray(start);
  const limit = o.cutAfter ?? o.stallAfter;
  if (limit === undefined) {
    res.end(rest);
    return;
  }
  res.write(rest.subarray(0, limit), () => {
    // a graceful close (FIN): the client reads what was sent, then sees the body end early (an RST would drop unread bytes)
    if (o.cutAfter !== undefined) setTimeout(() => res.socket?.end(), 20);
  });
}

/** The files (not directories) under a cache directory, as relative paths. */
function filesUnder(root: string): string[] {
  if (!existsSync(root)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(root, p));
    }
  };
  walk(root);
  return out.sort();
}

async function rejectsDownload(p: Promise<unknown>, kind: DownloadError["kind"], message: RegExp): Promise<DownloadError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof DownloadError, `expected a DownloadError, got ${String(err)}`);
    assert.equal(err.kind, kind, `kind; message: ${err.message}`);
    assert.match(err.message, message);
    return err;
  }
  assert.fail("expected the download to fail");
}

const quick = { retryDelayMs: 0, idleTimeoutMs: 5000 };

test("spec forms: hf: with slash, colon and revision, hub URLs, plain URLs, local paths; bad specs name the problem", () => {
  assert.deepEqual(parseModelSpec("hf:TheBloke/TinyLlama-GGUF/tinyllama.Q4_K_M.gguf"), {
    kind: "hf",
    ref: { owner: "TheBloke", repo: "TinyLlama-GGUF", revision: "main", file: "tinyllama.Q4_K_M.gguf" },
  });
  assert.deepEqual(parseModelSpec("hf:o/r:sub/m.gguf"), { kind: "hf", ref: { owner: "o", repo: "r", revision: "main", file: "sub/m.gguf" } });
  assert.deepEqual(parseModelSpec("hf:o/r@v1.0/m.gguf"), { kind: "hf", ref: { owner: "o", repo: "r", revision: "v1.0", file: "m.gguf" } });
  assert.deepEqual(parseModelSpec("hf:o/r@abc123:m.gguf"), { kind: "hf", ref: { owner: "o", repo: "r", revision: "abc123", file: "m.gguf" } });
  assert.deepEqual(parseModelSpec("https://huggingface.co/o/r/blob/main/dir/m.gguf"), {
    kind: "hf",
    ref: { owner: "o", repo: "r", revision: "main", file: "dir/m.gguf" },
  });
  const plain = parseModelSpec("https://example.com/files/m.gguf?x=1");
  assert.equal(plain.kind, "url");
  assert.deepEqual(parseModelSpec("models/m.gguf"), { kind: "local", path: "models/m.gguf" });
  assert.equal(hfFileUrl({ owner: "o", repo: "r", revision: "main", file: "a b/m.gguf" }), "https://huggingface.co/o/r/resolve/main/a%20b/m.gguf");
  assert.equal(hfFileUrl({ owner: "o", repo: "r", revision: "main", file: "m.gguf" }, "http://127.0.0.1:9/"), "http://127.0.0.1:9/o/r/resolve/main/m.gguf");

  assert.throws(() => parseModelSpec("hf:owner/repo:Q4_K_M"), (e: unknown) => e instanceof ModelSpecError && /not a \.gguf file name.*quant tags/.test(e.message));
  assert.throws(() => parseModelSpec("hf:owner-only.gguf"), (e: unknown) => e instanceof ModelSpecError && /expected hf:OWNER\/REPO\/FILE\.gguf/.test(e.message));
  assert.throws(() => parseModelSpec("hf:o/r/../x.gguf"), (e: unknown) => e instanceof ModelSpecError && /not a file path inside the repository/.test(e.message));
  assert.throws(() => parseModelSpec("hf:o/.hidden/x.gguf"), (e: unknown) => e instanceof ModelSpecError && /not a valid hub repository name/.test(e.message));
});

test("cache directory: KVSPLIT_CACHE_DIR, then the platform's convention", () => {
  assert.equal(defaultCacheDir({ KVSPLIT_CACHE_DIR: "/tmp/kv" }, "linux", "/home/u"), "/tmp/kv");
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: "/x/cache" }, "linux", "/home/u"), "/x/cache/kvsplit");
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: "relative" }, "linux", "/home/u"), "/home/u/.cache/kvsplit");
  assert.equal(defaultCacheDir({}, "linux", "/home/u"), "/home/u/.cache/kvsplit");
  assert.equal(defaultCacheDir({}, "darwin", "/Users/u"), "/Users/u/Library/Caches/kvsplit");
  assert.equal(defaultCacheDir({ LOCALAPPDATA: "C:\\Users\\u\\AppData\\Local" }, "win32", "C:\\Users\\u"), "C:\\Users\\u\\AppData\\Local\\kvsplit");
  assert.equal(
    hfCachePath("/c", { owner: "o", repo: "r", revision: "main", file: "sub/m.gguf" }),
    path.join("/c", "huggingface", "o", "r", "main", "sub", "m.gguf"),
  );
  const a = urlCachePath("/c", new URL("http://127.0.0.1:8080/x/m.gguf"));
  const b = urlCachePath("/c", new URL("http://127.0.0.1:8080/y/m.gguf"));
  assert.notEqual(a, b, "different URLs, different cache entries");
  assert.match(a, /url[\\/]127\.0\.0\.1_8080[\\/][0-9a-f]{16}[\\/]m\.gguf$/);
  assert.deepEqual(parseContentRange("bytes 10-99/100"), { start: 10, end: 99, total: 100 });
  assert.equal(parseContentRange("bytes 10-100/100"), undefined);
});

test("hf: download through a hub redirect to a CDN host: sizes and sha256 checked, token only to the hub; a cache hit makes no request", async () => {
  const body = payload(300_000);
  const cdn = await startServer((req, res) => serveBytes(req, res, body, { etag: `"${sha256(body)}"` }));
  const hub = await startServer((req, res) => {
    if (req.url === "/owner/repo/resolve/main/model.gguf") {
      res.writeHead(302, { location: `${cdn.base}/blobs/abc?sig=1`, "x-linked-size": body.length, "x-linked-etag": `"${sha256(body)}"` });
      res.end();
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  try {
    const cacheDir = freshCache();
    const env = { KVSPLIT_HF_ENDPOINT: hub.base, HF_TOKEN: "secret-token" };
    const events: DownloadProgress[] = [];
    const local = await resolveModelPath("hf:owner/repo/model.gguf", { cacheDir, env, onProgress: (p) => events.push({ ...p }), ...quick });
    assert.equal(local, hfCachePath(cacheDir, { owner: "owner", repo: "repo", revision: "main", file: "model.gguf" }));
    assert.ok(readFileSync(local).equals(body), "the cached file holds the served bytes");
    assert.deepEqual(filesUnder(cacheDir), [path.join("huggingface", "owner", "repo", "main", "model.gguf")], "no .part left behind");
    assert.equal(hub.seen.length, 1);
    assert.equal(cdn.seen.length, 1);
    assert.equal(hub.seen[0]!.headers.authorization, "Bearer secret-token");
    assert.equal(cdn.seen[0]!.headers.authorization, undefined, "the token never goes to another host");
    assert.equal(events[0]!.phase, "start");
    assert.equal(events[0]!.total, body.length);
    assert.ok(events.some((e) => e.phase === "verify"), "the sha256 named by the hub was checked");
    assert.equal(events.at(-1)!.phase, "done");
    assert.equal(events.at(-1)!.received, body.length);
    const received = events.filter((e) => e.phase === "data").map((e) => e.received);
    assert.ok(received.every((r, i) => i === 0 || r >= received[i - 1]!), "progress only grows");

    const again = await resolveModelPath("hf:owner/repo:model.gguf", { cacheDir, env, ...quick });
    assert.equal(again, local, "the colon form names the same cache entry");
    assert.equal(hub.seen.length + cdn.seen.length, 2, "a cache hit makes no request");
    assert.equal(cachedModelPath("https://huggingface.co/owner/repo/resolve/main/model.gguf", { cacheDir }), local);
    const offline = await resolveModelPath("hf:owner/repo/model.gguf", { cacheDir, env: { ...env, HF_HUB_OFFLINE: "1" } });
    assert.equal(offline, local, "offline mode still finds cached files");
  } finally {
    await hub.close();
    await cdn.close();
  }
});

test("a dropped connection keeps the .part; the next run resumes it with Range and If-Range", async () => {
  const body = payload(200_000, 3);
  const etag = '"v1-strong"';
  const server = await startServer((req, res, n) => serveBytes(req, res, body, n === 1 ? { cutAfter: 70_000, etag } : { etag }));
  try {
    const cacheDir = freshCache();
    const spec = `${server.base}/files/model.gguf`;
    const dest = cachedModelPath(spec, { cacheDir });
    const err = await rejectsDownload(resolveModelPath(spec, { cacheDir, retries: 0, ...quick }), "interrupted", /stopped at \d+ of 200000 bytes.*kept and the next run resumes/);
    assert.equal(err.resumable, true);
    const { part, meta } = partPaths(dest);
    assert.equal(existsSync(dest), false, "no file under the final name after a failure");
    const have = statSync(part).size;
    assert.ok(have > 0 && have <= 70_000, `part holds what arrived (${have} bytes)`);
    assert.ok(readFileSync(part).equals(body.subarray(0, have)), "the part is a prefix of the file");
    assert.ok(existsSync(meta));

    const events: DownloadProgress[] = [];
    const local = await resolveModelPath(spec, { cacheDir, onProgress: (p) => events.push({ ...p }), ...quick });
    assert.equal(local, dest);
    assert.ok(readFileSync(local).equals(body));
    assert.equal(server.seen.length, 2);
    assert.equal(server.seen[1]!.headers.range, `bytes=${have}-`);
    assert.equal(server.seen[1]!.headers["if-range"], etag);
    assert.equal(events[0]!.resumedFrom, have);
    assert.deepEqual(filesUnder(cacheDir), [path.relative(cacheDir, dest)]);
  } finally {
    await server.close();
  }
});

test("within one call, an interrupted transfer is retried from where it stopped", async () => {
  const body = payload(150_000, 5);
  const server = await startServer((req, res, n) => serveBytes(req, res, body, n <= 2 ? { cutAfter: 40_000 } : {}));
  try {
    const cacheDir = freshCache();
    const events: DownloadProgress[] = [];
    const local = await resolveModelPath(`${server.base}/m.gguf`, { cacheDir, onProgress: (p) => events.push({ ...p }), ...quick });
    assert.ok(readFileSync(local).equals(body));
    assert.equal(events.filter((e) => e.phase === "retry").length, 2);
    assert.equal(server.seen.length, 3);
    assert.equal(server.seen[0]!.headers.range, undefined);
    assert.match(server.seen[1]!.headers.range ?? "", /^bytes=\d+-$/);
    assert.match(server.seen[2]!.headers.range ?? "", /^bytes=\d+-$/);
  } finally {
    await server.close();
  }
});

test("a truncated body (Content-Length larger than what is sent) leaves only the .part and says so", async () => {
  const body = payload(100_000, 9);
  const server = await startServer((req, res) => serveBytes(req, res, body, { cutAfter: 30_000 }));
  try {
    const cacheDir = freshCache();
    const spec = `${server.base}/dir/truncated.gguf`;
    const dest = cachedModelPath(spec, { cacheDir });
    await rejectsDownload(resolveModelPath(spec, { cacheDir, retries: 1, ...quick }), "interrupted", /truncated\.gguf: the download stopped at \d+ of 100000 bytes/);
    const rel = path.relative(cacheDir, dest);
    assert.deepEqual(filesUnder(cacheDir), [`${rel}.part`, `${rel}.part.json`]);
    assert.equal(server.seen.length, 2, "one retry, resuming");
    const part = readFileSync(`${dest}.part`);
    assert.ok(part.length > 30_000 && part.equals(body.subarray(0, part.length)), "both attempts' bytes kept, in order");
  } finally {
    await server.close();
  }
});

test("404 names the spec, the repository and the file; nothing is left in the cache", async () => {
  const hub = await startServer((_req, res) => {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("Entry not found");
  });
  try {
    const cacheDir = freshCache();
    await rejectsDownload(
      resolveModelPath("hf:someone/some-repo/missing.Q4_K_M.gguf", { cacheDir, env: { KVSPLIT_HF_ENDPOINT: hub.base }, ...quick }),
      "not-found",
      /^hf:someone\/some-repo\/missing\.Q4_K_M\.gguf: not found \(HTTP 404 from .*\/someone\/some-repo\/resolve\/main\/missing\.Q4_K_M\.gguf\); check that the repository someone\/some-repo exists and has the file missing\.Q4_K_M\.gguf at revision main/,
    );
    assert.equal(hub.seen.length, 1, "a 404 is not retried");
    assert.deepEqual(filesUnder(cacheDir), []);
  } finally {
    await hub.close();
  }
});

test("unreachable hosts: connection refused and an unresolvable name say so plainly, leave nothing behind", async () => {
  const probe = await startServer(() => {});
  const closedPort = new URL(probe.base).port;
  await probe.close();
  const cacheDir = freshCache();
  await rejectsDownload(
    resolveModelPath("hf:o/r/m.gguf", { cacheDir, env: { KVSPLIT_HF_ENDPOINT: `http://127.0.0.1:${closedPort}` }, ...quick }),
    "unreachable",
    new RegExp(`^hf:o/r/m\\.gguf: cannot connect to 127\\.0\\.0\\.1:${closedPort} \\(connection refused\\); the model is not in the cache yet`),
  );
  await rejectsDownload(
    resolveModelPath("https://no-such-host.invalid/m.gguf", { cacheDir, ...quick }),
    "offline",
    /cannot resolve host no-such-host\.invalid \((ENOTFOUND|EAI_AGAIN)\): are you offline\?/,
  );
  await rejectsDownload(
    resolveModelPath("hf:o/r/m.gguf", { cacheDir, env: { HF_HUB_OFFLINE: "1" } }),
    "offline",
    /not in the cache .* downloads are off/,
  );
  assert.deepEqual(filesUnder(cacheDir), []);
});

test("a server that ignores Range sends the whole file again: the download restarts cleanly", async () => {
  const body = payload(120_000, 11);
  const server = await startServer((req, res, n) => serveBytes(req, res, body, n === 1 ? { cutAfter: 50_000 } : { ignoreRange: true }));
  try {
    const cacheDir = freshCache();
    const spec = `${server.base}/m.gguf`;
    await rejectsDownload(resolveModelPath(spec, { cacheDir, retries: 0, ...quick }), "interrupted", /stopped at/);
    const events: DownloadProgress[] = [];
    const local = await resolveModelPath(spec, { cacheDir, onProgress: (p) => events.push({ ...p }), ...quick });
    assert.match(server.seen[1]!.headers.range ?? "", /^bytes=\d+-$/, "a resume was asked for");
    assert.ok(events.some((e) => e.phase === "restart"));
    assert.ok(readFileSync(local).equals(body), "not the old prefix plus the whole file: exactly the file");
  } finally {
    await server.close();
  }
});

test("a part that is already whole (416 with the same total) is finished without a body", async () => {
  const body = payload(10_000, 13);
  let first = true;
  const server = await startServer((req, res) => {
    if (first) {
      first = false;
      // all bytes, but the connection dies before the response is complete (declared longer)
      res.writeHead(200, { "content-length": body.length + 5 });
      res.write(body, () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    serveBytes(req, res, body);
  });
  try {
    const cacheDir = freshCache();
    const spec = `${server.base}/m.gguf`;
    await rejectsDownload(resolveModelPath(spec, { cacheDir, retries: 0, ...quick }), "interrupted", /stopped at 10000 of 10005/);
    const local = await resolveModelPath(spec, { cacheDir, ...quick });
    assert.equal(server.seen[1]!.headers.range, "bytes=10000-");
    assert.ok(readFileSync(local).equals(body));
  } finally {
    await server.close();
  }
});

test("size and sha256 checks: a wrong hash or an oversized body leaves no file", async () => {
  const body = payload(50_000, 17);
  const server = await startServer((req, res) => {
    if (req.url === "/badhash.gguf") {
      res.writeHead(200, { "content-length": body.length, "x-linked-etag": `"${"0".repeat(64)}"` });
      res.end(body);
    } else if (req.url === "/sizes.gguf") {
      res.writeHead(302, { location: "/blob", "x-linked-size": body.length + 1 });
      res.end();
    } else {
      serveBytes(req, res, body);
    }
  });
  try {
    const cacheDir = freshCache();
    await rejectsDownload(resolveModelPath(`${server.base}/badhash.gguf`, { cacheDir, ...quick }), "hash-mismatch", /sha256 [0-9a-f]{64} but the hub names 0{64}/);
    await rejectsDownload(resolveModelPath(`${server.base}/sizes.gguf`, { cacheDir, ...quick }), "size-mismatch", /hub says the file has 50001 bytes but the download server sends 50000/);
    assert.deepEqual(filesUnder(cacheDir), []);
  } finally {
    await server.close();
  }
});

test("a stalled body times out (idle timeout) and keeps the part for the next run", async () => {
  const body = payload(80_000, 19);
  const server = await startServer((req, res) => serveBytes(req, res, body, { stallAfter: 20_000 }));
  try {
    const dest = path.join(freshCache(), "stalled.gguf");
    await rejectsDownload(downloadFile(`${server.base}/stalled.gguf`, dest, { retries: 0, idleTimeoutMs: 300 }), "interrupted", /stopped at \d+ of 80000 bytes \(.*no data for 0\.3 s/);
    assert.equal(existsSync(dest), false);
    assert.ok(statSync(`${dest}.part`).size > 0);
  } finally {
    await server.close();
  }
});

test("one downloader per file: a live process's lock is 'busy', a dead process's lock is taken over", async () => {
  const body = payload(5_000, 23);
  const server = await startServer((req, res) => serveBytes(req, res, body));
  try {
    const dest = path.join(freshCache(), "locked.gguf");
    mkdirSync(path.dirname(dest), { recursive: true });
    writeFileSync(`${dest}.part.lock`, String(process.pid));
    await rejectsDownload(downloadFile(`${server.base}/locked.gguf`, dest, quick), "busy", new RegExp(`pid ${process.pid}\\) is downloading it`));
    assert.equal(server.seen.length, 0);
    const dead = spawnSync(process.execPath, ["-e", ""]).pid;
    writeFileSync(`${dest}.part.lock`, String(dead));
    await downloadFile(`${server.base}/locked.gguf`, dest, quick);
    assert.ok(readFileSync(dest).equals(body));
    assert.deepEqual(filesUnder(path.dirname(dest)), ["locked.gguf"], "the lock is released");
  } finally {
    await server.close();
  }
});

test("CLI: kvsplit tokenize -m hf:owner/repo/model.gguf downloads from the hub endpoint, then runs from the cache", async () => {
  const modelFile = path.join(dir, "served.gguf");
  synthToFile({ preset: "tiny", seed: 3 }, modelFile);
  const bytes = readFileSync(modelFile);
  const hub = await startServer((req, res) => {
    if (req.url === "/owner/repo/resolve/main/model.gguf") serveBytes(req, res, bytes);
    else {
      res.writeHead(404);
      res.end();
    }
  });
  const cli = path.join(REPO_ROOT, "dist", "src", "cli", "main.js");
  const cacheDir = freshCache();
  const env = { ...process.env, KVSPLIT_HF_ENDPOINT: hub.base, KVSPLIT_CACHE_DIR: cacheDir };
  const run = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [cli, ...args], { env, timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  try {
    const local = await run("tokenize", "-m", modelFile, "-p", "hi there", "--json");
    assert.equal(local.code, 0, local.stderr);
    const first = await run("tokenize", "-m", "hf:owner/repo/model.gguf", "-p", "hi there", "--json");
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(JSON.parse(first.stdout), JSON.parse(local.stdout), "same tokens as the local file");
    assert.match(first.stderr, /downloaded hf:owner\/repo\/model\.gguf/, "progress goes to stderr");
    assert.equal(hub.seen.length, 1);
    const cached = path.join(cacheDir, "huggingface", "owner", "repo", "main", "model.gguf");
    assert.ok(readFileSync(cached).equals(bytes));

    const second = await run("tokenize", "-m", "hf:owner/repo/model.gguf", "-p", "hi there", "--json");
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, first.stdout);
    assert.equal(hub.seen.length, 1, "the second run makes no request");

    const missing = await run("tokenize", "-m", "hf:owner/repo/other.gguf", "-p", "hi");
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /^kvsplit: error: hf:owner\/repo\/other\.gguf: not found \(HTTP 404/m);
    assert.equal(missing.stdout, "");

    const badSpec = await run("tokenize", "-m", "hf:owner/repo:Q4_K_M", "-p", "hi");
    assert.equal(badSpec.code, 2);
    assert.match(badSpec.stderr, /quant tags/);
  } finally {
    await hub.close();
  }
});
