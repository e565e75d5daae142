/**
 * The engine in headless Chromium (dist/web/kvsplit.js in a page, its engine and pool workers, kernels fetched):
 * greedy tokens equal Node's for the same model, prompt and K/V config; stop aborts a generation; a reload finds the
 * model in the Origin Private File System and asks the server for no model bytes; a non-GGUF file gets a clear error,
 * and from a server without Range requests it is not kept in the cache.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { loadModel } from "../../src/model/model.js";
import { Sampler } from "../../src/model/sampler.js";
import { generateStream } from "../../src/model/stream.js";
import { configOfSchedule, kvPairsOf, parseKvConfig, exactOptions } from "../../src/kv/shorthand.js";
import { parseKvSchedule } from "../../src/kv/schedule.js";
import { ISOLATION_HEADERS } from "../../src/serve/static.js";
import { launchChromium, PAGE_MOUNTS, startPageServer, type Browser, type PageServer } from "../helpers/browser.js";
import { sharedPaths, sharedSkip } from "../helpers/shared.js";

const skip = sharedSkip(sharedPaths.hd64);
const MODEL_URL = "/models/tinystories-2m-hd64.gguf";
const PROMPT = "Once upon a time, there was a little dog";

/** Greedy tokens in Node: the reference. */
async function nodeTokens(kv: string, maxTokens: number): Promise<number[]> {
  const model = loadModel(sharedPaths.hd64, { threads: 2 });
  try {
    const config = parseKvConfig(kv);
    const session = model.createSession({ contextSize: 512, kv: kvPairsOf(config), ...exactOptions(config) });
    const stream = generateStream(session, model.tokenizer, model.tokenizer.encode(PROMPT, { addSpecial: true }), { maxTokens, sampler: new Sampler({}) });
    const tokens: number[] = [];
    for await (const piece of stream) if (piece.token >= 0) tokens.push(piece.token);
    return tokens;
  } finally {
    model.dispose();
  }
}

interface PageRun {
  kernels: string;
  tokens: number[];
  text: string;
  stopReason: string;
  fromCache: boolean;
  kvLayers: Array<{ k: string; v: string }>;
  threads: number;
}

/** In the page: load the model from MODEL_URL with `kv`, generate greedily. */
function pageTokens(page: import("playwright-core").Page, kv: string, maxTokens: number): Promise<PageRun> {
  return page.evaluate(async ({ url, kv, maxTokens, prompt }) => {
    const lib: string = "/kvsplit.js"; // the bundle the page server serves
    const { KvsplitEngine } = await import(lib);
    const engine = await KvsplitEngine.create({ threads: 2 });
    try {
      const info = await engine.load({ url }, { kv, contextSize: 512 });
      const generation = engine.complete(prompt, { maxTokens, temperature: 0 });
      const tokens: number[] = [];
      for await (const piece of generation) if (piece.token >= 0) tokens.push(piece.token);
      const summary = await generation.summary;
      return { kernels: engine.kernels, tokens, text: summary.text, stopReason: summary.stopReason, fromCache: info.fromCache, kvLayers: info.kvLayers, threads: info.threads };
    } finally {
      engine.dispose();
    }
  }, { url: MODEL_URL, kv, maxTokens, prompt: PROMPT });
}

let server: PageServer;
let browser: Browser;

before(async () => {
  if (skip) return;
  server = await startPageServer();
  browser = await launchChromium();
});
after(async () => {
  await browser?.dispose();
  await server?.close();
});

test("greedy tokens in Chromium equal Node's (F16, K8V4, K4V4+w32), on 2 threads", { skip, timeout: 180_000 }, async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.url}index.html?mode=local`);
  assert.equal(await page.evaluate(() => self.crossOriginIsolated), true, "the page server sends COOP/COEP");
  for (const kv of ["F16", "K8V4", "K4V4+w32"]) {
    const expected = await nodeTokens(kv, 48);
    const run = await pageTokens(page, kv, 48);
    assert.equal(run.threads, 2);
    assert.equal(run.stopReason, "max_tokens");
    assert.deepEqual(run.tokens, expected, `${kv}: page and Node generate the same tokens`);
    assert.equal(run.kvLayers.length, 4);
  }
  await page.close();
});

test("without cross-origin isolation the page runs one thread (the unshared-memory build) and gives the same tokens", { skip, timeout: 120_000 }, async () => {
  const plain = await startPageServer(undefined, false);
  try {
    const page = await browser.context.newPage();
    await page.goto(`${plain.url}index.html?mode=local`);
    assert.equal(await page.evaluate(() => self.crossOriginIsolated), false);
    const run = await pageTokens(page, "K8V4", 24);
    assert.equal(run.threads, 1);
    assert.equal(run.kernels, "single");
    assert.deepEqual(run.tokens, await nodeTokens("K8V4", 24));
    await page.close();
  } finally {
    await plain.close();
  }
});

test("a per-layer K/V schedule (as kvsplit tune writes it) gives the same tokens as Node; a wrong layer count is refused", { skip, timeout: 120_000 }, async () => {
  const schedule = JSON.stringify({ layers: [{ k: "q8_0", v: "q4_0" }, { k: "iq4_nl", v: "iq3_nl" }, { k: "q5_0", v: "q4_1" }, { k: "q8_0", v: "q8_0" }], window: 16 });
  const model = loadModel(sharedPaths.hd64, { threads: 2 });
  let expected: number[];
  try {
    const config = configOfSchedule(parseKvSchedule(schedule, "test"));
    const session = model.createSession({ contextSize: 512, kv: kvPairsOf(config), ...exactOptions(config) });
    const stream = generateStream(session, model.tokenizer, model.tokenizer.encode(PROMPT, { addSpecial: true }), { maxTokens: 24, sampler: new Sampler({}) });
    expected = [];
    for await (const piece of stream) if (piece.token >= 0) expected.push(piece.token);
  } finally {
    model.dispose();
  }
  const page = await browser.context.newPage();
  await page.goto(`${server.url}index.html?mode=local`);
  const run = await page.evaluate(async ({ url, schedule, prompt }) => {
    const lib: string = "/kvsplit.js";
    const { KvsplitEngine } = await import(lib);
    const engine = await KvsplitEngine.create({ threads: 2 });
    try {
      const info = await engine.load({ url }, { schedule, contextSize: 512 });
      const generation = engine.complete(prompt, { maxTokens: 24 });
      const tokens: number[] = [];
      for await (const piece of generation) if (piece.token >= 0) tokens.push(piece.token);
      let refused = "";
      await engine.load({ url }, { schedule: JSON.stringify({ layers: [{ k: "q8_0", v: "q4_0" }] }) }).catch((e: Error) => (refused = e.message));
      return { tokens, layers: info.kvLayers, refused };
    } finally {
      engine.dispose();
    }
  }, { url: MODEL_URL, schedule, prompt: PROMPT });
  assert.deepEqual(run.layers.map((l: { k: string; v: string }) => `${l.k}/${l.v}`), ["q8_0/q4_0", "iq4_nl/iq3_nl", "q5_0/q4_1", "q8_0/q8_0"]);
  assert.deepEqual(run.tokens, expected);
  assert.match(run.refused, /the schedule has 1 layers but the model has 4/);
  await page.close();
});

test("stop() aborts a generation in the page", { skip, timeout: 120_000 }, async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.url}index.html?mode=local`);
  const r = await page.evaluate(async (url) => {
    const lib: string = "/kvsplit.js"; // the bundle the page server serves
    const { KvsplitEngine } = await import(lib);
    const engine = await KvsplitEngine.create({ threads: 2 });
    await engine.load({ url }, { contextSize: 512 });
    const generation = engine.complete("Once", { maxTokens: 100_000 });
    let pieces = 0;
    for await (const _ of generation) if (++pieces === 3) engine.stop();
    const summary = await generation.summary;
    engine.dispose();
    return { stopReason: summary.stopReason, tokens: summary.tokens.length };
  }, MODEL_URL);
  assert.equal(r.stopReason, "aborted");
  assert.ok(r.tokens < 100, `stopped early (${r.tokens} tokens)`);
  await page.close();
});

test("a reload takes the model from the browser's cache: no model bytes are requested", { skip, timeout: 120_000 }, async () => {
  const fresh = await launchChromium();
  try {
    let page = await fresh.context.newPage();
    await page.goto(`${server.url}index.html?mode=local`);
    const before = server.requests.length;
    const first = await pageTokens(page, "K8V4", 8);
    const firstRequests = server.requests.slice(before).filter((r) => r.includes(MODEL_URL));
    assert.equal(first.fromCache, false);
    assert.ok(firstRequests.length >= 1 && firstRequests.every((r) => /Range: ?bytes=|bytes=/.test(r)), `ranged downloads: ${firstRequests.join("; ")}`);

    const again = await fresh.relaunch(); // the same profile: its Origin Private File System
    page = await again.context.newPage();
    await page.goto(`${server.url}index.html?mode=local`);
    const mark = server.requests.length;
    const second = await pageTokens(page, "K8V4", 8);
    assert.equal(second.fromCache, true);
    assert.deepEqual(server.requests.slice(mark).filter((r) => r.includes(MODEL_URL)), [], "no request for the model");
    assert.deepEqual(second.tokens, first.tokens);
    await again.dispose();
  } finally {
    await fresh.dispose();
  }
});

test("a file that is not GGUF gets a clear message (picker and URL)", { skip, timeout: 120_000 }, async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.url}index.html?mode=local`);
  await page.locator("#file").setInputFiles({ name: "notes.gguf", mimeType: "application/octet-stream", buffer: Buffer.from("these are my notes, not a model\n".repeat(8)) });
  await page.waitForSelector("body[data-state=error]");
  assert.match(await page.locator("#status").innerText(), /notes\.gguf.*not a GGUF file/i);
  const byUrl = await page.evaluate(async () => {
    const lib: string = "/kvsplit.js"; // the bundle the page server serves
    const { KvsplitEngine } = await import(lib);
    const engine = await KvsplitEngine.create({ threads: 1 });
    try {
      await engine.load({ url: "/chat.css" });
      return "loaded";
    } catch (e) {
      return `${(e as Error).name}: ${(e as Error).message} (loaded: ${JSON.stringify((e as { loaded?: unknown }).loaded)})`;
    } finally {
      engine.dispose();
    }
  });
  assert.match(byUrl, /^ModelSourceError: .*chat\.css: not a GGUF file.*\(loaded: null\)$/);
  await page.close();
});

test("a server without Range requests: a non-GGUF answer is refused and not cached; the model then loads from it", { skip, timeout: 180_000 }, async () => {
  // /whole/model.gguf answers 200 with a whole body whatever the Range header: first an HTML page (a static host's
  // fallback for a missing file), then, once "fixed", the model's bytes
  let body: Buffer = Buffer.from("<!doctype html><title>Not here</title>\n".repeat(100));
  const plain = await startPageServer(PAGE_MOUNTS, true, (_req, res, url) => {
    if (url.pathname !== "/whole/model.gguf") return false;
    res.writeHead(200, { ...ISOLATION_HEADERS, "Content-Type": "application/octet-stream", "Content-Length": String(body.length) }).end(body);
    return true;
  });
  const page = await browser.context.newPage();
  try {
    await page.goto(`${plain.url}index.html?mode=local`);
    const load = () => page.evaluate(async () => {
      const lib: string = "/kvsplit.js"; // the bundle the page server serves
      const { KvsplitEngine } = await import(lib);
      const engine = await KvsplitEngine.create({ threads: 1 });
      try {
        const info = await engine.load({ url: "/whole/model.gguf" }, { contextSize: 64 });
        return `loaded ${info.layers} layers, from cache: ${info.fromCache}`;
      } catch (e) {
        return `${(e as Error).name}: ${(e as Error).message}`;
      } finally {
        engine.dispose();
      }
    });
    assert.match(await load(), /^ModelSourceError: .*model\.gguf: not a GGUF file \(it starts with "<!do"/);
    body = readFileSync(sharedPaths.hd64);
    assert.match(await load(), /^loaded \d+ layers, from cache: false$/, "the refused page was not kept as the model");
    assert.match(await load(), /^loaded \d+ layers, from cache: true$/);
  } finally {
    await page.close();
    await plain.close();
  }
});
