/**
 * The engine's forward pass against the float64 reference (test/model/reference-forward.ts) on tiny synthetic models
 * written by the project's own GGUF writer, with an f32 KV cache.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { synthToFile, type SynthOptions } from "../../src/gguf/synth.js";
import { fileSource } from "../../src/gguf/source.js";
import { parseGguf } from "../../src/gguf/reader.js";
import { loadModel } from "../../src/model/model.js";
import { ReferenceLlama } from "./reference-forward.js";

const dir = mkdtempSync(path.join(tmpdir(), "kvsplit-forward-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

const TOKENS = [1, 300, 17, 255, 42, 42, 7, 511, 3, 99, 128, 64];

/**
 * Per position: the largest |engine − reference| logit difference relative to the largest |reference| logit,
 * against the reference that rounds matmul inputs through the dot partner (`emulated`) and the one that does not (`exact`).
 */
function compare(opts: SynthOptions): { emulated: number[]; exact: number[]; argmaxSame: number } {
  const file = path.join(dir, `m-${JSON.stringify(opts).replace(/[^a-z0-9]+/gi, "_")}.gguf`);
  synthToFile(opts, file);
  const model = loadModel(file);
  const session = model.createSession({ contextSize: 64, kv: { k: "f32", v: "f32" } });
  const logits = session.evalAll(TOKENS); // (nTokens, nVocab)
  const src = fileSource(file);
  const file0 = parseGguf(src);
  const emulatedRef = new ReferenceLlama(model.config, file0, src, true);
  const exactRef = new ReferenceLlama(model.config, file0, src, false);
  const nVocab = model.config.nVocab;
  const emulated: number[] = [];
  const exact: number[] = [];
  let argmaxSame = 0;
  for (let i = 0; i < TOKENS.length; i++) {
    const got = logits.subarray(i * nVocab, (i + 1) * nVocab);
    const wantEmulated = emulatedRef.step(TOKENS[i]);
    const wantExact = exactRef.step(TOKENS[i]);
    emulated.push(relativeError(got, wantEmulated));
    exact.push(relativeError(got, wantExact));
    if (argmax(got) === argmax(wantEmulated)) argmaxSame++;
  }
  src.close();
  session.dispose();
  return { emulated, exact, argmaxSame };
}

function relativeError(got: Float32Array, want: Float64Array): number {
  let maxDiff = 0;
  let maxRef = 0;
  for (let j = 0; j < want.length; j++) {
    maxDiff = Math.max(maxDiff, Math.abs(got[j] - want[j]));
    maxRef = Math.max(maxRef, Math.abs(want[j]));
  }
  return maxDiff / maxRef;
}

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let j = 1; j < x.length; j++) if (x[j] > x[best]) best = j;
  return best;
}

const SHAPES: Array<[string, SynthOptions["preset"]]> = [
  ["GQA, head_dim 16", { dim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 96, vocabSize: 512 }],
  ["tied output, MHA, head_dim 32", { dim: 64, nLayers: 3, nHeads: 2, nKvHeads: 2, ffnDim: 128, vocabSize: 512, tiedOutput: true }],
  ["the tiny preset (head_dim 64)", "tiny"],
];

for (const [label, preset] of SHAPES) {
  test(`forward, f32 weights, ${label}: every position equals the float64 reference within 1e-5 relative`, () => {
    const { exact, argmaxSame } = compare({ preset, type: "f32", seed: 7 });
    assert.ok(Math.max(...exact) < 1e-5, `relative errors ${exact.map((e) => e.toExponential(1))}`);
    assert.equal(argmaxSame, TOKENS.length);
  });
  for (const [type, step] of [["f16", 2 ** -11], ["q8_0", 1 / 127]] as const) {
    // The engine rounds each matmul input through the weights' dot partner (f16, q8_0) as llama.cpp does. The first
    // position pins that method: it must equal the partner-rounding reference to float error. Later positions attend
    // to cached K/V rows, and an input within float error of a rounding boundary (the engine sums in f32, the reference
    // in float64) may round the other way and stay in the cache; so there the bound is one partner step.
    test(`forward, ${type} weights, ${label}: equals the partner-rounding reference (first position 1e-5, all within one ${type} step)`, () => {
      const { emulated, exact } = compare({ preset, type, seed: 11 });
      assert.ok(emulated[0] < 1e-5, `first position: relative error ${emulated[0]} (the exact reference: ${exact[0]})`);
      assert.ok(exact[0] > 10 * emulated[0], `the partner rounding should matter: exact ${exact[0]} vs emulated ${emulated[0]}`);
      for (let i = 0; i < TOKENS.length; i++) {
        assert.ok(emulated[i] < step, `position ${i}: relative error ${emulated[i]} exceeds one ${type} step ${step}`);
      }
    });
  }
}

// ---- Architectures beyond plain llama: the same float64 check, and proof that each difference is exercised. ----

const ARCH_SHAPE = { dim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 96, vocabSize: 512 };
/** Llama 3.2's rope scaling (factor 32, low 1, high 4) scaled to this test's positions: factors 1, between, and 32. */
const LLAMA3_ROPE = { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 64 };
const ARCHITECTURES: Array<[string, SynthOptions, SynthOptions]> = [
  // [label, the model, the same weights without the feature (its logits must differ clearly)]
  [
    "qwen2 (q/k/v biases, NeoX rope, base 1e6)",
    { architecture: "qwen2", preset: { ...ARCH_SHAPE, ropeBase: 1e6 } },
    { architecture: "llama", attentionBias: true, preset: { ...ARCH_SHAPE, ropeBase: 1e6 } },
  ],
  [
    "Llama 3 style (rope_freqs factors, base 500000)",
    { llama3Rope: LLAMA3_ROPE, preset: { ...ARCH_SHAPE, ropeBase: 500000 } },
    { preset: { ...ARCH_SHAPE, ropeBase: 500000 } },
  ],
  [
    "linear rope scaling (rope.scaling.factor 4)",
    { ropeScaling: { type: "linear", factor: 4 }, preset: ARCH_SHAPE },
    { preset: ARCH_SHAPE },
  ],
];

/** Largest relative difference between two (nTokens, nVocab) logit arrays. */
function logitsDistance(a: Float32Array, b: Float32Array): number {
  let maxDiff = 0;
  let maxRef = 0;
  for (let j = 0; j < a.length; j++) {
    maxDiff = Math.max(maxDiff, Math.abs(a[j] - b[j]));
    maxRef = Math.max(maxRef, Math.abs(b[j]));
  }
  return maxDiff / maxRef;
}

function engineLogits(opts: SynthOptions): Float32Array {
  const file = path.join(dir, `e-${JSON.stringify(opts).replace(/[^a-z0-9]+/gi, "_")}.gguf`);
  synthToFile(opts, file);
  const model = loadModel(file);
  const session = model.createSession({ contextSize: 64, kv: { k: "f32", v: "f32" } });
  try {
    return session.evalAll(TOKENS);
  } finally {
    session.dispose();
    model.dispose();
  }
}

for (const [label, opts, without] of ARCHITECTURES) {
  test(`forward, f32 weights, ${label}: every position equals the float64 reference within 1e-5 relative`, (t) => {
    const { exact, argmaxSame } = compare({ ...opts, type: "f32", seed: 7 });
    const featureEffect = logitsDistance(engineLogits({ ...opts, type: "f32", seed: 7 }), engineLogits({ ...without, type: "f32", seed: 7 }));
    t.diagnostic(`max relative error ${Math.max(...exact).toExponential(2)}; without the feature: ${featureEffect.toExponential(2)}`);
    assert.ok(Math.max(...exact) < 1e-5, `relative errors ${exact.map((e) => e.toExponential(1))}`);
    assert.equal(argmaxSame, TOKENS.length);
    // the architecture's difference moves the logits far more than the tolerance
    assert.ok(featureEffect > 1e-2, `without the feature the logits differ by only ${featureEffect}`);
  });
  test(`forward, q8_0 weights, ${label}: equals the partner-rounding reference (first position 1e-5, all within one q8_0 step)`, () => {
    const { emulated } = compare({ ...opts, type: "q8_0", seed: 11 });
    assert.ok(emulated[0] < 1e-5, `first position: relative error ${emulated[0]}`);
    for (let i = 0; i < TOKENS.length; i++) assert.ok(emulated[i] < 1 / 127, `position ${i}: relative error ${emulated[i]}`);
  });
}
