/**
 * The chat page (dist/web/index.html) in headless Chromium: local mode (the engine in the page) loads a model from a
 * URL, answers a message sent with Enter and shows the K/V formats per layer and the KV gauge; remote mode, opened from
 * `kvsplit serve`, starts there by itself and answers through the server's streamed OpenAI API. Screenshots of each
 * state go to $KVSPLIT_SCREENSHOTS (default: a temporary folder, printed).
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import type { Page } from "playwright-core";
import { startServer, type KvsplitServer } from "../../src/serve/http.js";
import { kvPairsOf, parseKvConfig } from "../../src/kv/shorthand.js";
import { launchChromium, startPageServer, type Browser, type PageServer } from "../helpers/browser.js";
import { sharedPaths, sharedSkip } from "../helpers/shared.js";

const skip = sharedSkip(sharedPaths.hd64);
const SHOTS = process.env.KVSPLIT_SCREENSHOTS ?? mkdtempSync(path.join(os.tmpdir(), "kvsplit-screens-"));

let pages: PageServer;
let browser: Browser;

before(async () => {
  if (skip) return;
  mkdirSync(SHOTS, { recursive: true });
  pages = await startPageServer();
  browser = await launchChromium();
});
after(async () => {
  await browser?.dispose();
  await pages?.close();
});

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

/** Type a message, press Enter, wait for the answer; returns the assistant's text. */
async function ask(page: Page, text: string): Promise<string> {
  const answers = page.locator(".msg.assistant");
  const before = await answers.count();
  await page.locator("#message").fill(text);
  await page.locator("#message").press("Enter");
  await page.waitForFunction((n) => document.querySelectorAll(".msg.assistant").length > n && document.body.dataset.state === "ready", before, { timeout: 60_000 });
  return answers.nth(before).innerText();
}

test("chat page, local mode: loads from a URL, answers on Enter, shows K/V per layer and the KV gauge", { skip, timeout: 180_000 }, async (t) => {
  const page = await browser.context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${pages.url}?mode=local`);
  await page.waitForSelector("body[data-state=idle]");
  await shot(page, "local-empty");
  await page.goto(`${pages.url}?mode=local&model=/models/tinystories-2m-hd64.gguf&kv=K8V4&ctx=512&threads=2`);
  await page.waitForSelector("body[data-state=ready]", { timeout: 60_000 });
  assert.match(await page.locator("#status").innerText(), /Ready: tinystories-2m-hd64\.gguf in this page \(K8V4\)/);
  const layers = await page.locator("#layers tbody tr").allInnerTexts();
  assert.deepEqual(layers.map((r) => r.split(/\s+/).join(" ")), ["0 q8_0 q4_0", "1 q8_0 q4_0", "2 q8_0 q4_0", "3 q8_0 q4_0"]);
  const answer = await ask(page, "Tell me a story about a cat.");
  assert.ok(answer.trim().length > 0, "an answer was written");
  const gauge = await page.locator("#kv-text").innerText();
  const m = /^(\d+) \/ 512 tokens: .*\(F16 would need .*; 0\.41×\)/.exec(gauge);
  assert.ok(m && Number(m[1]) > 10, `gauge: ${gauge}`);
  assert.match(await page.locator("#speed").innerText(), /tokens\/s generating/);
  await shot(page, "local-answered");
  // the second turn reuses the cached conversation
  await ask(page, "What was the cat's name?");
  assert.match(await page.locator("#speed").innerText(), /tokens\/s prompt \(\d+ tokens, [1-9]\d* cached\)/);
  assert.deepEqual(errors, []);
  await page.close();
  t.diagnostic(`screenshots in ${SHOTS}`);
});

/** The side panel's model-dependent parts: layer rows, gauge text, speed, model line. */
async function panel(page: Page): Promise<{ layers: number; kv: string; speed: string; info: string }> {
  return {
    layers: await page.locator("#layers tbody tr").count(),
    kv: await page.locator("#kv-text").innerText(),
    speed: await page.locator("#speed").innerText(),
    info: await page.locator("#model-info").innerText(),
  };
}

test("chat page: a model from the file picker and by drag and drop; a file that is not GGUF is named as such and leaves the loaded model in use", { skip, timeout: 120_000 }, async () => {
  const page = await browser.context.newPage();
  await page.goto(`${pages.url}?mode=local`);
  await page.locator("#kv").selectOption("K4V4");
  await page.locator("#file").setInputFiles(sharedPaths.hd64);
  await page.waitForSelector("body[data-state=ready]", { timeout: 60_000 });
  assert.match(await page.locator("#status").innerText(), /Ready: tinystories-2m-hd64\.gguf in this page \(K4V4\)/);
  assert.ok((await ask(page, "Hello")).trim().length > 0);
  // drag and drop
  const dropped = await page.evaluateHandle(async () => {
    const bytes = await (await fetch("/models/tinystories-2m-hd64.gguf")).blob();
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], "dropped.gguf"));
    return transfer;
  });
  await page.dispatchEvent("#drop", "drop", { dataTransfer: dropped });
  await page.waitForFunction(() => document.body.dataset.state === "ready" && /dropped\.gguf/.test(document.getElementById("status")!.textContent ?? ""), undefined, { timeout: 60_000 });
  assert.ok((await ask(page, "Hello again")).trim().length > 0);
  const before = await panel(page);
  // a file that is not GGUF fails before the loaded model is let go: the page says so and goes on with that one
  await page.locator("#file").setInputFiles({ name: "photo.gguf", mimeType: "image/png", buffer: Buffer.from("\x89PNG\r\n\x1a\n and more bytes") });
  await page.waitForFunction(() => /photo\.gguf/.test(document.getElementById("status")!.textContent ?? ""), undefined, { timeout: 60_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.state), "ready");
  assert.match(await page.locator("#status").innerText(), /photo\.gguf: not a GGUF file.*\(still loaded: dropped\.gguf, K4V4\)/);
  assert.deepEqual(await panel(page), before, "the panel still describes the model in use");
  await shot(page, "local-not-gguf");
  assert.ok((await ask(page, "And then?")).trim().length > 0, "the loaded model still answers");
  // after a trip to remote mode (which empties the panel) the model still in use is shown again
  await page.locator("input[name=mode][value=remote]").check();
  await page.locator("input[name=mode][value=local]").check();
  assert.equal((await panel(page)).layers, 0);
  await page.locator("#file").setInputFiles({ name: "notes.gguf", mimeType: "text/plain", buffer: Buffer.from("not a model at all\n") });
  await page.waitForFunction(() => /notes\.gguf/.test(document.getElementById("status")!.textContent ?? ""), undefined, { timeout: 60_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.state), "ready");
  assert.equal((await panel(page)).layers, 4);
  assert.match((await panel(page)).info, /^dropped\.gguf: llama, 4 layers, K4V4 cache/);
  // a GGUF file cut short fails after the loaded model was let go: nothing of it stays on the panel
  const truncated = await page.evaluateHandle(async () => {
    const bytes = await (await fetch("/models/tinystories-2m-hd64.gguf")).arrayBuffer();
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes.slice(0, bytes.byteLength >> 1)], "half.gguf"));
    return transfer;
  });
  await page.dispatchEvent("#drop", "drop", { dataTransfer: truncated });
  await page.waitForSelector("body[data-state=error]", { timeout: 60_000 });
  assert.match(await page.locator("#status").innerText(), /half\.gguf/);
  assert.match(await page.locator(".msg").last().innerText(), /^This conversation has ended: its model was let go/);
  assert.deepEqual(await panel(page), { layers: 0, kv: "–", speed: "–", info: "" });
  for (const bar of ["#gauge-f16", "#gauge-kv"]) assert.equal(await page.locator(bar).evaluate((e) => (e as HTMLElement).style.width), "0%", bar);
  assert.equal(await page.locator("#send").isDisabled(), true);
  await page.waitForTimeout(300); // the bars' 0.2 s width transition, for the screenshot
  await shot(page, "local-truncated");
  await page.close();
});

test("chat page, remote mode: opened from kvsplit serve (with --api-key) it connects there and streams answers", { skip, timeout: 180_000 }, async () => {
  const config = parseKvConfig("K8V4");
  let server: KvsplitServer | undefined;
  try {
    const started = await startServer({ modelPath: sharedPaths.hd64, host: "127.0.0.1", port: 0, threads: 2, contextSize: 512, kv: kvPairsOf(config), kvName: config.name, parallel: 1, apiKey: "sesame" });
    server = started.server;
    const page = await browser.context.newPage();
    await page.goto(started.url);
    // the page is public; the API needs the key
    await page.waitForSelector("body[data-state=error]", { timeout: 60_000 });
    assert.match(await page.locator("#status").innerText(), /missing API key/);
    await page.locator("#api-key").fill("sesame");
    await page.locator("#connect").click();
    await page.waitForSelector("body[data-state=ready]", { timeout: 60_000 });
    assert.equal(await page.locator("input[name=mode][value=remote]").isChecked(), true, "starts in remote mode");
    assert.match(await page.locator("#status").innerText(), /on kvsplit serve \(K8V4\)/);
    assert.equal(await page.locator("#layers tbody tr").count(), 4);
    const answer = await ask(page, "Tell me a story about a dog.");
    assert.ok(answer.trim().length > 0);
    const gauge = await page.locator("#kv-text").innerText();
    assert.match(gauge, /^[1-9]\d* \/ 512 tokens: .*0\.41×/);
    assert.match(await page.locator("#speed").innerText(), /tokens\/s generating \([1-9]\d* tokens\)/);
    await shot(page, "remote-answered");
    // connecting to another server lets this one go: when that one cannot be reached, the conversation shown has ended
    await page.locator("#server").fill("http://127.0.0.1:9/");
    await page.locator("#connect").click();
    await page.waitForSelector("body[data-state=error]", { timeout: 60_000 });
    assert.match(await page.locator(".msg").last().innerText(), /^This conversation has ended: its server was left/);
    assert.equal(await page.locator("#send").isDisabled(), true);
    await page.close();
  } finally {
    await server?.close();
  }
});
