/**
 * The browser's numbers for BENCHMARKS.md (bench/results/web.json; `npm run bench:md -- --sections ""` composes):
 * kvsplit in headless Chromium (dist/web, the engine worker and its pool on `-t` threads), wllama (@wllama/wllama,
 * llama.cpp compiled to WebAssembly with SIMD and threads) in the same browser, and kvsplit in Node, on the same model,
 * K/V configs, prompts and thread count, alternating engine by engine within each rep. Each run: a fresh cache, a
 * prompt of about 512 tokens (pp), then `--gen` generated tokens after it (tg after 512), greedy.
 * With --big FILE it also loads that file (over 2 GB) from a URL into the page and reports the time and bytes.
 *
 *   node dist/bench/web-bench.js [--model FILE] [-t 2] [--reps 3] [--gen 32] [--configs F16,K8V4] [--big FILE]
 */
import { execSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { loadModel, type Model } from "../src/model/model.js";
import { Sampler } from "../src/model/sampler.js";
import { generateStream } from "../src/model/stream.js";
import { kvPairsOf, parseKvConfig } from "../src/kv/shorthand.js";
import { writeFileAtomic } from "../src/report/atomic.js";
import { WEB_DIR } from "../src/serve/static.js";
import { launchChromium, startPageServer, CHROMIUM } from "../test/helpers/browser.js";
import { gitDescription } from "./git-description.js";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const RESULTS = path.join(REPO_ROOT, "bench", "results", "web.json");
const WLLAMA_DIR = path.join(REPO_ROOT, "node_modules", "@wllama", "wllama", "esm");
const TEXT = path.join(REPO_ROOT, "..", "shared", "data", "tinystories-valid-sample.txt");
const PROMPT_TOKENS = 512;
/** llama.cpp's names of each config's K and V types (wllama takes them as cache_type_k / cache_type_v). */
const LLAMA_TYPES: Record<string, { k: string; v: string }> = { F16: { k: "f16", v: "f16" }, K8V8: { k: "q8_0", v: "q8_0" }, K8V4: { k: "q8_0", v: "q4_0" }, K4V4: { k: "q4_0", v: "q4_0" } };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const log = (s: string) => process.stderr.write(s + "\n");

export interface RunTimes {
  prompt_n: number;
  prompt_ms: number;
  gen_n: number;
  gen_ms: number;
}
export interface WebBenchResult {
  started: string;
  commit: string;
  model: string;
  threads: number;
  reps: number;
  gen: number;
  chromium: string;
  wllama: string;
  cpu: string;
  configs: Record<string, { kvsplit_page: RunTimes[]; wllama: RunTimes[]; kvsplit_node: RunTimes[] }>;
  big?: { file: string; bytes: number; download_s: number; load_s: number; layers: number; ok: boolean; error?: string };
}

/** One prompt per rep: words of the evaluation text from a different place, cut where the tokens reach PROMPT_TOKENS. */
function promptsFor(model: Model, reps: number): string[] {
  const words = readFileSync(TEXT, "utf8").split(/\s+/);
  return Array.from({ length: reps }, (_, r) => {
    const from = r * 1500;
    let lo = 1;
    let hi = 1200;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (model.tokenizer.encode(words.slice(from, from + mid).join(" "), { addSpecial: true }).length <= PROMPT_TOKENS) lo = mid;
      else hi = mid - 1;
    }
    return words.slice(from, from + lo).join(" ");
  });
}

async function nodeRun(model: Model, kv: string, prompt: string, gen: number): Promise<RunTimes> {
  const config = parseKvConfig(kv);
  const session = model.createSession({ contextSize: 1024, kv: kvPairsOf(config) });
  try {
    const tokens = model.tokenizer.encode(prompt, { addSpecial: true });
    const stream = generateStream(session, model.tokenizer, tokens, { maxTokens: gen, sampler: new Sampler({}) });
    for await (const _ of stream);
    const r = stream.result!;
    return { prompt_n: r.promptTokens, prompt_ms: r.promptMs, gen_n: r.genEvals, gen_ms: r.genMs };
  } finally {
    session.dispose();
  }
}

/** In the page: kvsplit's engine with `kv`, kept on `window.kvsplitBench` between runs of one config. */
async function pageLoad(page: Page, url: string, kv: string, threads: number): Promise<void> {
  await page.evaluate(async ({ url, kv, threads }) => {
    const lib: string = "/kvsplit.js";
    const { KvsplitEngine } = await import(lib);
    const w = window as unknown as { kvsplitBench?: { dispose(): void } };
    w.kvsplitBench?.dispose();
    const engine = await KvsplitEngine.create({ threads });
    await engine.load({ url }, { kv, contextSize: 1024 });
    w.kvsplitBench = engine;
  }, { url, kv, threads });
}

async function pageRun(page: Page, prompt: string, gen: number): Promise<RunTimes> {
  return page.evaluate(async ({ prompt, gen }) => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const engine = (window as any).kvsplitBench;
    await engine.reset();
    const generation = engine.complete(prompt, { maxTokens: gen, temperature: 0 });
    for await (const _ of generation);
    const s = await generation.summary;
    return { prompt_n: s.promptTokens, prompt_ms: s.promptMs, gen_n: s.genTokens, gen_ms: s.genMs };
  }, { prompt, gen });
}

/** In the page: wllama with the config's llama.cpp K/V types (flash attention on for a quantized V, as llama.cpp needs). */
async function wllamaLoad(page: Page, url: string, types: { k: string; v: string }, threads: number): Promise<void> {
  await page.evaluate(async ({ url, types, threads }) => {
    const lib: string = "/wllama/index.js";
    const { Wllama } = await import(lib);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const w = window as any;
    if (w.wllamaBench) await w.wllamaBench.exit();
    const wllama = new Wllama({ default: "/wllama-wasm/wllama.wasm" }, { suppressNativeLog: true, logger: { debug() {}, log() {}, warn() {}, error: console.error } });
    const blob = await (await fetch(url)).blob();
    await wllama.loadModel([blob], { n_ctx: 1024, n_batch: 512, n_threads: threads, cache_type_k: types.k, cache_type_v: types.v, flash_attn: true });
    w.wllamaBench = wllama;
  }, { url, types, threads });
}

async function wllamaRun(page: Page, prompt: string, gen: number): Promise<RunTimes> {
  return page.evaluate(async ({ prompt, gen }) => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const wllama = (window as any).wllamaBench;
    const r = await wllama.createCompletion({ prompt, max_tokens: gen, temperature: 0, cache_prompt: false });
    const t = r.timings;
    return { prompt_n: t.prompt_n, prompt_ms: t.prompt_ms, gen_n: t.predicted_n, gen_ms: t.predicted_ms };
  }, { prompt, gen });
}

const rate = (xs: RunTimes[], which: "prompt" | "gen") => median(xs.map((x) => (which === "prompt" ? (x.prompt_n * 1000) / x.prompt_ms : (x.gen_n * 1000) / x.gen_ms)));

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: "string", default: path.join(REPO_ROOT, ".cache", "tinyllama-1.1b-q8_0.gguf") },
      threads: { type: "string", short: "t", default: "2" },
      reps: { type: "string", default: "3" },
      gen: { type: "string", default: "32" },
      configs: { type: "string", default: "F16,K8V4" },
      big: { type: "string" },
    },
  });
  const modelFile = path.resolve(values.model);
  if (!existsSync(modelFile)) throw new Error(`${modelFile}: model not found (make it with: kvsplit synth --preset tinyllama-1.1b --type q8_0 -o ${path.relative(REPO_ROOT, modelFile)})`);
  const threads = Number(values.threads);
  const reps = Number(values.reps);
  const gen = Number(values.gen);
  const configs = values.configs.split(",");
  for (const c of configs) if (!LLAMA_TYPES[c]) throw new Error(`--configs: ${c} has no llama.cpp equivalent here; choose from ${Object.keys(LLAMA_TYPES).join(", ")}`);

  const nodeModel = loadModel(modelFile, { threads });
  const prompts = promptsFor(nodeModel, reps);
  const result: WebBenchResult = {
    started: new Date().toISOString(),
    commit: gitDescription(REPO_ROOT),
    model: path.relative(REPO_ROOT, modelFile),
    threads, reps, gen,
    chromium: execSync(`${CHROMIUM} --version`).toString().trim(),
    wllama: JSON.parse(readFileSync(path.join(WLLAMA_DIR, "..", "package.json"), "utf8")).version,
    cpu: os.cpus()[0]?.model ?? "unknown",
    configs: {},
  };
  const save = () => writeFileAtomic(RESULTS, JSON.stringify(result, null, 2) + "\n");
  const server = await startPageServer([
    { prefix: "/models/", dir: path.dirname(modelFile) },
    { prefix: "/wllama/", dir: WLLAMA_DIR },
    { prefix: "/wllama-wasm/", dir: path.join(WLLAMA_DIR, "wasm") },
    { prefix: "/", dir: WEB_DIR },
  ]);
  const browser = await launchChromium();
  try {
    const page = await browser.context.newPage();
    page.on("pageerror", (e) => log(`page error: ${e.message}`));
    await page.goto(`${server.url}index.html?mode=local`);
    const url = `/models/${path.basename(modelFile)}`;
    for (const kv of configs) {
      log(`${kv}: loading in the page (kvsplit, wllama)`);
      await pageLoad(page, url, kv, threads);
      await wllamaLoad(page, url, LLAMA_TYPES[kv]!, threads);
      const rows = (result.configs[kv] = { kvsplit_page: [] as RunTimes[], wllama: [] as RunTimes[], kvsplit_node: [] as RunTimes[] });
      for (let r = 0; r < reps; r++) {
        rows.kvsplit_page.push(await pageRun(page, prompts[r]!, gen));
        rows.wllama.push(await wllamaRun(page, prompts[r]!, gen));
        rows.kvsplit_node.push(await nodeRun(nodeModel, kv, prompts[r]!, gen));
        const last = (xs: RunTimes[]) => `pp ${((xs.at(-1)!.prompt_n * 1000) / xs.at(-1)!.prompt_ms).toFixed(1)} tg ${((xs.at(-1)!.gen_n * 1000) / xs.at(-1)!.gen_ms).toFixed(1)}`;
        log(`${kv} rep ${r + 1}/${reps}: kvsplit page ${last(rows.kvsplit_page)} | wllama ${last(rows.wllama)} | kvsplit node ${last(rows.kvsplit_node)}`);
        save();
      }
      await page.evaluate(async () => {
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        const w = window as any;
        w.kvsplitBench?.dispose();
        await w.wllamaBench?.exit();
        w.kvsplitBench = w.wllamaBench = undefined;
      });
    }
    if (values.big) {
      const big = path.resolve(values.big);
      const bigServer = await startPageServer([{ prefix: "/big/", dir: path.dirname(big) }, { prefix: "/", dir: WEB_DIR }]);
      const bigPage = await browser.context.newPage();
      await bigPage.goto(`${bigServer.url}index.html?mode=local`);
      log(`big: ${big} (${(statSync(big).size / 2 ** 30).toFixed(2)} GiB) from a URL into the page`);
      const r = await bigPage.evaluate(async (url) => {
        const lib: string = "/kvsplit.js";
        const { KvsplitEngine } = await import(lib);
        const engine = await KvsplitEngine.create({ threads: 2 });
        const start = performance.now();
        let downloaded = 0;
        try {
          const info = await engine.load({ url }, { kv: "K8V4", contextSize: 256 }, (p: { phase: string; done: number }) => {
            if (p.phase === "download" && downloaded === 0 && p.done > 0) downloaded = -performance.now();
            if (p.phase === "read" && downloaded < 0) downloaded = performance.now() + downloaded;
          });
          const generation = engine.complete("Once upon a time", { maxTokens: 2 });
          for await (const _ of generation);
          await generation.summary;
          return { ok: true, layers: info.layers as number, total_s: (performance.now() - start) / 1000, download_s: downloaded / 1000 };
        } catch (e) {
          return { ok: false, layers: 0, total_s: (performance.now() - start) / 1000, download_s: downloaded / 1000, error: String(e) };
        } finally {
          engine.dispose();
        }
      }, `/big/${path.basename(big)}`);
      result.big = { file: path.relative(REPO_ROOT, big), bytes: statSync(big).size, download_s: r.download_s, load_s: r.total_s - r.download_s, layers: r.layers, ok: r.ok, error: r.error };
      log(`big: ${JSON.stringify(result.big)}`);
      save();
      await bigServer.close();
    }
  } finally {
    await browser.dispose();
    await server.close();
    nodeModel.dispose();
  }
  for (const [kv, rows] of Object.entries(result.configs)) {
    log(`${kv}: tg page/node ${(rate(rows.kvsplit_page, "gen") / rate(rows.kvsplit_node, "gen")).toFixed(2)}x, page/wllama tg ${(rate(rows.kvsplit_page, "gen") / rate(rows.wllama, "gen")).toFixed(2)}x, pp ${(rate(rows.kvsplit_page, "prompt") / rate(rows.wllama, "prompt")).toFixed(2)}x`);
  }
  log(`wrote ${path.relative(REPO_ROOT, RESULTS)}`);
}

await main().catch((err: unknown) => {
  console.error(`web-bench: error: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
