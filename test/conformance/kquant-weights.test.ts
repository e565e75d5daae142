/**
 * K-quant weights (q2_K .. q6_K) end to end against llama.cpp: for each format a synthetic llama model (dim 256,
 * ffn 512, 2 layers, every matrix in that format, written by the project's own GGUF writer) gives next-token
 * distributions equal to llama.cpp's (node-llama-cpp, f32 cache, flash attention off): mean KL divergence < 1e-4 over
 * 256 positions. Both engines quantize the activations of a K-quant matmul to q8_K, so only summation order differs.
 * The diagnostic also prints how far the format itself moves llama.cpp's distribution from the same model in f32
 * weights, to show the bound is far below what a different weight or activation treatment would give.
 */
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { closeLlama, llamaLogProbs } from "../helpers/llamacpp.js";
import { meanKld, syntheticPromptTokens } from "../helpers/synth-prompt.js";
import { synthToFile, type SynthWeightType } from "../../src/gguf/synth.js";
import { loadModel } from "../../src/index.js";

const N_POSITIONS = 256;
const KLD_LIMIT = 1e-4;
const SHAPE = { dim: 256, ffnDim: 512, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 512, contextLength: 512 };
const TYPES: readonly SynthWeightType[] = ["q4_K", "q5_K", "q6_K", "q2_K", "q3_K"];

let dir = "";
before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "kvsplit-kquant-"));
});
after(async () => {
  await closeLlama();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const tokens = syntheticPromptTokens(N_POSITIONS, SHAPE.vocabSize, 12345);
let f32Reference: Float32Array | undefined;

async function llamaF32Weights(): Promise<Float32Array> {
  if (!f32Reference) {
    const file = path.join(dir, "synth-f32.gguf");
    synthToFile({ preset: SHAPE, type: "f32", seed: 7 }, file);
    f32Reference = await llamaLogProbs(file, tokens);
  }
  return f32Reference;
}

for (const type of TYPES) {
  test(`${type} weights: kvsplit's next-token distributions match llama.cpp's (mean KLD < ${KLD_LIMIT}, f32 cache)`, async (t) => {
    const file = path.join(dir, `synth-${type}.gguf`);
    synthToFile({ preset: SHAPE, type, seed: 7 }, file);
    const theirs = await llamaLogProbs(file, tokens);
    const model = loadModel(file);
    let ours: Float32Array;
    try {
      assert.equal(model.config.nVocab, SHAPE.vocabSize);
      const session = model.createSession({ kv: { k: "f32", v: "f32" } });
      try {
        ours = session.evalAll(tokens);
      } finally {
        session.dispose();
      }
    } finally {
      model.dispose();
    }
    const vsLlama = meanKld(theirs, ours, N_POSITIONS, SHAPE.vocabSize);
    const formatCost = meanKld(await llamaF32Weights(), theirs, N_POSITIONS, SHAPE.vocabSize);
    t.diagnostic(
      `${type}: kvsplit vs llama.cpp mean KLD ${vsLlama.mean.toExponential(3)} (max ${vsLlama.max.toExponential(2)}); ` +
        `llama.cpp ${type} vs f32 weights ${formatCost.mean.toExponential(3)}`,
    );
    assert.ok(vsLlama.mean < KLD_LIMIT, `${type}: mean KLD ${vsLlama.mean} vs llama.cpp`);
    // the check has power: the weight format itself moves the distribution far more than the bound
    assert.ok(formatCost.mean > 10 * vsLlama.mean, `${type}: format cost ${formatCost.mean} vs engine difference ${vsLlama.mean}`);
  });
}
