/**
 * The comparison (eval/compare.ts, eval/perplexity.ts) and the `perplexity` / `compare` commands on a small synthetic
 * model: plans, memory arithmetic against DESIGN.md's TinyLlama figures, the perplexity runner against kld.ts's
 * accumulator over the session's own logits, an F32 row reproducing the f32 baseline exactly, bad input → exit 2,
 * the JSON contract, and a --kl-divergence-base / --kl-divergence round trip through the CLI.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { runCli, type CliRun } from "../helpers/cli.js";
import { synthToFile } from "../../src/gguf/synth.js";
import { loadModel, type Model } from "../../src/index.js";
import { parseKvConfigList } from "../../src/kv/shorthand.js";
import { chunksForBudget, kvMemory, paretoFront, parseSweep, planConfigs, runCompare, type CompareResult } from "../../src/eval/compare.js";
import { EvalInputError, prepareEvalText, runPerplexity } from "../../src/eval/perplexity.js";
import { PerplexityAccumulator } from "../../src/eval/kld.js";
import { KV_FORMAT_NAMES } from "../../src/formats/types.js";

/** head_dim 32 (one quant block per head), context 64: small enough to run every config in a second or two. */
const SHAPE = { dim: 64, nLayers: 2, nHeads: 2, nKvHeads: 1, ffnDim: 128, vocabSize: 320, contextLength: 64 };
const TEXT = "Once upon a time there was a little girl named Lily. She saw a big red ball in the park and wanted to play with it. ".repeat(8);
let dir = "";
let modelPath = "";
let textPath = "";

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "kvsplit-compare-"));
  modelPath = path.join(dir, "small.gguf");
  synthToFile({ preset: SHAPE, type: "f32", seed: 5 }, modelPath);
  textPath = path.join(dir, "text.txt");
  writeFileSync(textPath, TEXT);
  writeFileSync(path.join(dir, "short.txt"), "Once upon a time.");
});
after(() => rmSync(dir, { recursive: true, force: true }));

function withModel<T>(f: (m: Model) => T): T {
  const m = loadModel(modelPath, { threads: 1 });
  try {
    return f(m);
  } finally {
    m.dispose();
  }
}

test("planConfigs: the asked configs first, then the sensitivity set and the sweep, each pair once", () => {
  const asked = parseKvConfigList("F16,K8V8,K8V4,K4V8,K4V4");
  assert.deepEqual(planConfigs(asked, { sensitivity: false, sweep: [] }).map((p) => p.name), ["F16", "K8V8", "K8V4", "K4V8", "K4V4"]);
  const withSens = planConfigs(asked, { sensitivity: true, sweep: [] });
  assert.deepEqual(withSens.map((p) => `${p.name}:${p.group}`).slice(5), ["K8V16:sensitivity", "K16V8:sensitivity", "K4V16:sensitivity", "K16V4:sensitivity"]);
  const sweep = planConfigs([], { sensitivity: false, sweep: ["k", "v"] });
  assert.equal(sweep.length, 2 * (KV_FORMAT_NAMES.length - 1));
  assert.ok(sweep.every((p) => (p.k === "f16") !== (p.v === "f16")), "exactly one side leaves f16");
  assert.deepEqual(parseSweep("v, k ,v"), ["v", "k"]);
  assert.throws(() => parseSweep("k,q"), /'q' is not a side; allowed: k, v, or k,v/);
});

test("kvMemory matches DESIGN.md's TinyLlama figures at 8192 tokens", () => {
  // 22 layers, 4 kv heads × head_dim 64.
  const tinyLlama = { config: { nLayers: 22, kvDim: 256 } } as unknown as Model;
  const mib = (k: string, v: string): number => kvMemory(tinyLlama, { k, v } as never, [8192]).bytesAt.get(8192)! / 2 ** 20;
  assert.equal(mib("f16", "f16"), 176);
  assert.equal(mib("q8_0", "q8_0"), 93.5);
  assert.equal(mib("q8_0", "q4_0"), 71.5);
  assert.equal(mib("q4_0", "q4_0"), 49.5);
});

test("paretoFront keeps exactly the non-dominated rows", () => {
  const rows = [
    { config: "A", kvBytesPerToken: 100, kldMean: 1e-3 },
    { config: "B", kvBytesPerToken: 200, kldMean: 1e-4 },
    { config: "C", kvBytesPerToken: 200, kldMean: 5e-4 }, // dominated by B
    { config: "D", kvBytesPerToken: 300, kldMean: 2e-4 }, // dominated by B
    { config: "E", kvBytesPerToken: 400, kldMean: 1e-8 },
  ];
  assert.deepEqual([...paretoFront(rows)].sort(), ["A", "B", "E"]);
});

test("runPerplexity equals kld.ts's accumulator over the session's logits; bad chunking input is an EvalInputError", () => {
  withModel((model) => {
    const evalText = prepareEvalText(model, TEXT, 32, 3);
    assert.equal(evalText.chunks.length, 3);
    assert.ok(evalText.chunks.every((c) => c.length === 32 && c[0] === model.tokenizer.bosId));
    const run = runPerplexity(model, evalText, { kv: { k: "q8_0", v: "q4_0" } });
    const session = model.createSession({ contextSize: 32, kv: { k: "q8_0", v: "q4_0" } });
    const reference = new PerplexityAccumulator();
    for (const chunk of evalText.chunks) {
      session.reset();
      reference.addChunk(session.evalAll(chunk), chunk, model.config.nVocab);
    }
    assert.equal(run.kvBytes, session.kvBytes);
    session.dispose();
    const want = reference.summary();
    assert.equal(run.nTokens, want.nTokens);
    assert.ok(Math.abs(run.ppl / want.ppl - 1) < 1e-12, `${run.ppl} vs ${want.ppl}`);

    assert.throws(() => prepareEvalText(model, "Once upon a time.", 32), (e: unknown) => e instanceof EvalInputError && /fewer than one chunk of -c 32/.test(e.message));
    assert.throws(() => prepareEvalText(model, TEXT, 128), /larger than the model's trained context of 64 tokens/);
  });
});

test("runCompare: an F32 row reproduces the baseline exactly; bytes and savings follow the formats", () => {
  withModel((model) => {
    const evalText = prepareEvalText(model, TEXT, 32, 2);
    const plan = planConfigs(parseKvConfigList("F32,F16,K8V8,K4V4"), { sensitivity: true, sweep: [] });
    const partials: CompareResult[] = [];
    const result = runCompare(model, evalText, { plan, rotation: true, speed: { promptTokens: 8, genTokens: 4, reps: 1 }, onResult: (r) => partials.push(r) });
    assert.equal(result.rows.length, plan.length);
    // partial results after each config: the baseline and every config finished so far, the last one the whole result
    assert.deepEqual(partials.map((r) => r.rows.map((row) => row.config)), plan.map((_, i) => plan.slice(0, i + 1).map((p) => p.name)));
    assert.deepEqual(partials.at(-1), result);
    const row = (name: string) => result.rows.find((r) => r.config === name)!;
    const f32 = row("F32");
    assert.ok(f32.kldMean < 1e-12, `F32 KLD ${f32.kldMean} (base log-probs are stored as float32)`);
    assert.equal(f32.top1Agree, 1);
    assert.equal(f32.ppl, result.baseline.ppl);
    assert.equal(f32.savedVsF16Pct, -100);
    const f16 = row("F16");
    assert.ok(f16.kldMean > 0 && f16.kldMean < 1e-5, `F16 KLD ${f16.kldMean}`);
    assert.ok(row("K4V4").kldMean > row("K8V8").kldMean, "4-bit K/V lose more than 8-bit");
    // kvDim 32: f16 row 64 B, q8_0 34 B, q4_0 18 B; two layers, K + V.
    assert.equal(f16.kvBytesPerToken, 2 * (64 + 64));
    assert.equal(row("K8V8").kvBytesPerToken, 2 * (34 + 34));
    assert.equal(row("K4V4").kvBytesPerToken, 2 * (18 + 18));
    assert.equal(row("K4V4").kvBytesAt.get(8192), 8192 * 72);
    assert.equal(row("K4V4").kvBytesAt.get(64), 64 * 72, "the trained context");
    assert.ok(Math.abs(row("K4V4").savedVsF16Pct - 100 * (1 - 72 / 256)) < 1e-9);
    assert.ok(result.rows.every((r) => r.ppTps > 0 && r.tgTps > 0));
  });
});

test("chunksForBudget: as many chunks as fit the budget, at least 1, at most all", () => {
  const speed = { promptTokens: 128, genTokens: 32, reps: 3 };
  // 11 runs (baseline + 10 configs) in 60 s: 5454 ms each; the speed run costs 3 × (128 + 128) × 1 ms = 768 ms
  assert.equal(chunksForBudget({ available: 100, nConfigs: 10, chunkMs: 512, ctx: 512, speed, budgetSeconds: 60 }), Math.floor((60000 / 11 - 768) / 512));
  assert.equal(chunksForBudget({ available: 5, nConfigs: 10, chunkMs: 10, ctx: 512, speed, budgetSeconds: 60 }), 5, "never more than the text has");
  assert.equal(chunksForBudget({ available: 100, nConfigs: 22, chunkMs: 60000, ctx: 512, speed, budgetSeconds: 60 }), 1, "never fewer than one");
});

test("compare without -m: the shipped trained model shows keys more sensitive than values, K8V4 on the front", () => {
  const out = path.join(dir, "default-job");
  const r = kvsplit("compare", "--chunks", "3", "--speed-reps", "1", "--no-plots", "--out", out, "--json");
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout) as { model: string; embedded_default: boolean; rows: { config: string; kld_mean: number }[] };
  assert.equal(json.embedded_default, true);
  assert.ok(json.model.endsWith(path.join("assets", "models", "tinystories-2m-hd64-f16.gguf")), json.model);
  const kld = (config: string) => json.rows.find((row) => row.config === config)!.kld_mean;
  assert.ok(kld("K4V16") > 1.5 * kld("K16V4"), `4-bit keys (KLD ${kld("K4V16")}) cost more than 4-bit values (${kld("K16V4")})`);
  assert.ok(kld("K8V4") < kld("K4V8"), `K8V4 (${kld("K8V4")}) beats K4V8 (${kld("K4V8")}) at the same bytes`);
  assert.match(r.stderr, /embedded default: tinystories-2m-hd64-f16\.gguf, a 3\.2M-parameter model trained on TinyStories/);
});

const kvsplit = (...args: string[]): CliRun => runCli(dir, args, { ...process.env, KVSPLIT_CACHE_DIR: path.join(dir, "cache") });

function assertBadInput(r: CliRun, message: RegExp): void {
  assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at .*:\d+:\d+/, "no stack trace");
  assert.equal(r.stdout, "");
}

test("bad input exits 2 with a clear message: short text, context above the model's, unknown config, bad base file", () => {
  assertBadInput(kvsplit("perplexity", "-m", modelPath, "-f", "short.txt", "-c", "32"), /fewer than one chunk of -c 32/);
  assertBadInput(kvsplit("perplexity", "-m", modelPath, "-f", "text.txt", "-c", "128"), /-c 128 is larger than the model's trained context of 64 tokens/);
  assertBadInput(kvsplit("compare", "-m", modelPath, "-f", "text.txt", "--configs", "F16,K7V4"), /unknown KV cache config 'K7V4'/);
  assertBadInput(kvsplit("compare", "-m", modelPath, "-f", "short.txt", "-c", "32"), /fewer than one chunk/);
  assertBadInput(kvsplit("compare", "-m", modelPath, "-f", "text.txt", "-c", "100"), /larger than the model's trained context/);
  assertBadInput(kvsplit("compare", "-m", modelPath, "--sweep", "x"), /'x' is not a side/);
  assertBadInput(kvsplit("perplexity", "-m", modelPath, "--kl-divergence", "text.txt"), /text\.txt: not a kvsplit KL-divergence base file/);
  assertBadInput(kvsplit("perplexity", "-m", modelPath, "-f", "text.txt", "--kl-divergence", "a", "--kl-divergence-base", "b"), /exclude each other/);
});

test("perplexity --json: the contract fields; a saved base compared against itself gives KLD 0 and Δppl 0", () => {
  const base = path.join(dir, "base.kld");
  const saved = kvsplit("perplexity", "-m", modelPath, "-f", "text.txt", "-c", "32", "--chunks", "3", "--kv", "F32", "--kl-divergence-base", base, "--json");
  assert.equal(saved.code, 0, saved.stderr);
  const s = JSON.parse(saved.stdout) as Record<string, unknown>;
  for (const key of ["ppl", "ppl_stderr", "n_tokens", "kv", "kv_bytes", "kv_bits_per_value"]) assert.ok(key in s, `perplexity JSON has ${key}`);
  assert.equal(s.kv_bits_per_value, 32, "an f32 cache: 32 bits per value");
  assert.equal(s.n_tokens, 3 * 15);
  assert.ok(existsSync(base));

  const same = JSON.parse(kvsplit("perplexity", "-m", modelPath, "--kl-divergence", base, "--kv", "F32", "--json").stdout) as Record<string, number>;
  assert.ok(same.kld_mean < 1e-12, `KLD ${same.kld_mean}`);
  assert.equal(same.top1_agree, 1);
  assert.equal(same.delta_ppl_pct, 0);
  assert.equal(same.ppl_base, s.ppl);

  const q = kvsplit("perplexity", "-m", modelPath, "-f", "text.txt", "--kl-divergence", base, "--kv", "K4V4", "--json");
  assert.equal(q.code, 0, q.stderr);
  const r = JSON.parse(q.stdout) as Record<string, number>;
  for (const key of ["kld_mean", "kld_median", "kld_p99", "top1_agree", "ppl_base", "delta_ppl_pct", "delta_ppl_pct_stderr"]) assert.equal(typeof r[key], "number", key);
  assert.ok(r.kld_mean > 0 && r.kld_p99 >= r.kld_median);
  assert.ok(Math.abs(r.delta_ppl_pct - 100 * (r.ppl / r.ppl_base - 1)) < 1e-9);

  writeFileSync(path.join(dir, "other.txt"), TEXT.toUpperCase());
  assertBadInput(kvsplit("perplexity", "-m", modelPath, "-f", "other.txt", "--kl-divergence", base), /different text/);
  assertBadInput(kvsplit("perplexity", "-m", modelPath, "--kl-divergence", base, "--chunks", "4"), /holds 3 chunks/);
});

test("compare --json writes results.json, results.csv and the plots; the JSON follows DESIGN.md section 4", () => {
  const out = path.join(dir, "results");
  const r = kvsplit("compare", "-m", modelPath, "-f", "text.txt", "-c", "32", "--chunks", "2", "--configs", "F16,K8V4,K4V8", "--out", out, "--speed-reps", "1", "--json");
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout) as { model: string; rows: Record<string, unknown>[] };
  assert.equal(json.model, modelPath);
  assert.deepEqual(json.rows.map((row) => row.config), ["F16", "K8V4", "K4V8", "K8V16", "K16V8", "K8V8", "K4V16", "K16V4", "K4V4"]);
  for (const row of json.rows) {
    for (const key of ["config", "k", "v", "kv_bytes_per_token", "ppl", "delta_ppl_pct", "kld_mean", "top1_agree", "pp_tps", "tg_tps"]) assert.ok(key in row, `row has ${key}`);
    // bits counted as the issue counts them: every byte of the -c 32 cache × 8 / (32 × 2 layers × kvDim 32 × 2)
    assert.equal(row.kv_bytes, 32 * (row.kv_bytes_per_token as number), `${row.config} kv_bytes`);
    assert.equal(row.kv_bits_per_value, (8 * (row.kv_bytes as number)) / (32 * 2 * 32 * 2), `${row.config} kv_bits_per_value`);
  }
  const bits = (config: string) => json.rows.find((row) => row.config === config)!.kv_bits_per_value;
  assert.deepEqual([bits("F16"), bits("K8V4"), bits("K4V4")], [16, 6.5, 4.5], "f16 16 bits; q8_0 8.5 and q4_0 4.5 bits per value");
  assert.deepEqual(JSON.parse(readFileSync(path.join(out, "results.json"), "utf8")), json);
  const csv = readFileSync(path.join(out, "results.csv"), "utf8").trim().split("\n");
  assert.equal(csv.length, 1 + json.rows.length);
  assert.ok(csv[0].startsWith("config,k,v,group,kv_bytes_per_token,kv_bytes_128,"), csv[0]);
  assert.ok(csv[0].includes(",kv_bytes,kv_bits_per_value,"), csv[0]);
  for (const name of ["kv-memory", "quality-vs-memory", "kv-sensitivity", "speed"]) {
    assert.ok(readFileSync(path.join(out, `${name}.svg`), "utf8").includes("<svg"), `${name}.svg`);
    assert.deepEqual([...readFileSync(path.join(out, `${name}.png`)).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], `${name}.png is a PNG`);
  }
});
