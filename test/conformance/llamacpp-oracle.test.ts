/**
 * The llama.cpp oracle (test/helpers/llamacpp.ts) is sane: it reproduces the numbers shared/models/README.md records,
 * its two paths (greedy evaluate, full distributions) agree, and rotation on/off really switches llama.cpp's rotation.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { sharedPaths, sharedSkip } from "../helpers/shared.js";
import { closeLlama, llamaGreedy, llamaKvCacheLog, llamaLogProbs, llamaTokenize, llamaVocabSize } from "../helpers/llamacpp.js";
import { scoredRange, splitIntoChunks } from "../../src/eval/chunks.js";
import { KldAccumulator, PerplexityAccumulator } from "../../src/eval/kld.js";
import { argmaxRow } from "../../src/eval/logprobs.js";

const skip = sharedSkip(sharedPaths.stories260K, sharedPaths.hd64, sharedPaths.evalText);
after(() => closeLlama());

/**
 * The chunking the README's perplexities were measured with (its torch evaluation, "BOS + 511 tokens"): the text's
 * tokens without BOS, cut into consecutive runs of 511, each prefixed by BOS; rows 255..510 scored (256 tokens).
 * (llama-perplexity's own method, src/eval/chunks.ts, differs slightly: 512-token chunks whose first token is replaced
 * by BOS, 255 tokens scored; it is checked against the README values only loosely below.)
 */
async function readmePerplexity(modelPath: string, nChunks: number): Promise<number> {
  const tokens = await llamaTokenize(modelPath, readFileSync(sharedPaths.evalText, "utf8"));
  const nVocab = await llamaVocabSize(modelPath);
  const body = tokens.slice(1);
  let nll = 0;
  let count = 0;
  for (let c = 0; c < nChunks; c++) {
    const chunk = [tokens[0], ...body.slice(c * 511, (c + 1) * 511)];
    const lp = await llamaLogProbs(modelPath, chunk, { firstOutput: 255 }); // (512, nVocab), rows 255.. filled
    for (let r = 255; r <= 510; r++, count++) nll -= lp[r * nVocab + chunk[r + 1]];
  }
  return Math.exp(nll / count);
}

async function llamaPerplexityMethod(modelPath: string, nChunks: number): Promise<number> {
  const tokens = await llamaTokenize(modelPath, readFileSync(sharedPaths.evalText, "utf8"));
  const nVocab = await llamaVocabSize(modelPath);
  const acc = new PerplexityAccumulator();
  for (const chunk of splitIntoChunks(tokens, 512, { bosToken: tokens[0], maxChunks: nChunks })) {
    acc.addChunk(await llamaLogProbs(modelPath, chunk, { firstOutput: scoredRange(512).first }), chunk, nVocab);
  }
  return acc.summary().ppl;
}

test("tokenization adds BOS (id 1) as llama.cpp does for these models", { skip }, async () => {
  const tokens = await llamaTokenize(sharedPaths.stories260K, "Once upon a time");
  assert.equal(tokens[0], 1);
  assert.ok(tokens.length > 2 && tokens.length < 10, `tokens ${tokens}`);
});

test("stories260K greedy from BOS begins [403, 407, 261, 378, 432] and matches the argmax of the distributions", { skip }, async () => {
  const { tokens, firstEogAt } = await llamaGreedy(sharedPaths.stories260K, 40);
  assert.deepEqual(tokens.slice(0, 5), [403, 407, 261, 378, 432]);
  assert.equal(tokens.length, 40);
  assert.equal(firstEogAt, null);
  // The same f16 cache, flash attention off (node-llama-cpp's defaults for this model), through controlledEvaluate.
  const prompt = [1, ...tokens.slice(0, 39)];
  const lp = await llamaLogProbs(sharedPaths.stories260K, prompt, { typeK: "f16", typeV: "f16", flashAttention: false });
  const nVocab = await llamaVocabSize(sharedPaths.stories260K);
  assert.equal(nVocab, 512);
  for (let r = 0; r < prompt.length; r++) {
    assert.equal(argmaxRow(lp, r, nVocab), tokens[r], `position ${r}`);
    let total = 0;
    for (let i = 0; i < nVocab; i++) total += Math.exp(lp[r * nVocab + i]);
    assert.ok(Math.abs(total - 1) < 1e-5, `row ${r} sums to ${total}`);
  }
});

test("f32-cache perplexities reproduce shared/models/README.md (16 chunks of 512)", { skip }, async (t) => {
  const p260 = await readmePerplexity(sharedPaths.stories260K, 16);
  const pHd64 = await readmePerplexity(sharedPaths.hd64, 16);
  const m260 = await llamaPerplexityMethod(sharedPaths.stories260K, 16);
  const mHd64 = await llamaPerplexityMethod(sharedPaths.hd64, 16);
  t.diagnostic(`README chunking: stories260K ${p260.toFixed(4)} (README 3.697), hd64 ${pHd64.toFixed(4)} (README 5.2461)`);
  t.diagnostic(`llama-perplexity chunking: stories260K ${m260.toFixed(4)}, hd64 ${mHd64.toFixed(4)}`);
  assert.ok(Math.abs(p260 - 3.697) < 0.001, `stories260K ppl ${p260}`);
  assert.ok(Math.abs(pHd64 - 5.2461) < 0.0005, `hd64 ppl ${pHd64}`);
  assert.ok(Math.abs(m260 / 3.697 - 1) < 0.01, `stories260K llama-perplexity-method ppl ${m260}`);
  assert.ok(Math.abs(mHd64 / 5.2461 - 1) < 0.01, `hd64 llama-perplexity-method ppl ${mHd64}`);
});

test("rotation off sets LLAMA_ATTN_ROT_DISABLE for that context only; it changes quantized caches, not f16", { skip }, async () => {
  const tokens = (await llamaTokenize(sharedPaths.hd64, readFileSync(sharedPaths.evalText, "utf8"))).slice(0, 256);
  const nVocab = await llamaVocabSize(sharedPaths.hd64);
  const kld = async (typeK: "f16" | "q4_0", rotation: boolean): Promise<number> => {
    const base = await llamaLogProbs(sharedPaths.hd64, tokens);
    const test = await llamaLogProbs(sharedPaths.hd64, tokens, { typeK, typeV: typeK, rotation });
    const acc = new KldAccumulator(nVocab);
    acc.addChunk(base, test, tokens);
    return acc.summary().kldMean;
  };
  const logStart = (await llamaKvCacheLog()).length;
  const q4On = await kld("q4_0", true);
  const q4Off = await kld("q4_0", false);
  const log = (await llamaKvCacheLog()).slice(logStart);
  assert.ok(log.some((l) => /attn_rot_k = 1/.test(l)), `no context with rotation on in ${log.join(" | ")}`);
  assert.ok(log.some((l) => /force disabled/.test(l)), `no context with rotation off in ${log.join(" | ")}`);
  assert.equal(process.env.LLAMA_ATTN_ROT_DISABLE, undefined);
  assert.notEqual(q4On, q4Off);
  assert.ok(q4On > 1e-4 && q4Off > 1e-4, `q4_0 KLD on ${q4On} off ${q4Off}`);
  const f16On = await kld("f16", true);
  const f16Off = await kld("f16", false);
  assert.equal(f16On, f16Off);
  assert.ok(f16On < 1e-5, `f16 KLD ${f16On}`);
});
