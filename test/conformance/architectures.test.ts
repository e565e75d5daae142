/**
 * Architectures beyond plain llama, end to end against llama.cpp (node-llama-cpp), on synthetic models written by the
 * project's own GGUF writer (dim 256, head_dim 64, GQA 4/2, 2 layers, f32 weights), 256 positions:
 * - qwen2 (q/k/v biases, NeoX rope, base 1e6), a Llama-3-style llama (rope_freqs.weight factors, base 500000) and a
 *   llama with linear rope scaling:
 *   with an f32 cache (flash attention off), kvsplit's next-token distributions equal llama.cpp's: mean KLD < 1e-4;
 *   each feature matters: llama.cpp's distributions without it (same weights) are far from llama.cpp's with it;
 * - a quantized K/V pair costs kvsplit (KLD from its own f32 cache) at most 1.2x what it costs llama.cpp (KLD from
 *   llama.cpp's f32 cache);
 * - an unsupported architecture ("gpt2") fails through the CLI with exit code 2 and a message listing the supported ones;
 *   so does a rope scaling kvsplit does not compute (yarn).
 */
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { closeLlama, llamaLogProbs } from "../helpers/llamacpp.js";
import { REPO_ROOT } from "../helpers/shared.js";
import { meanKld as meanAndMaxKld, syntheticPromptTokens } from "../helpers/synth-prompt.js";
import { synthToFile, type SynthOptions } from "../../src/gguf/synth.js";
import { SUPPORTED_ARCHITECTURES } from "../../src/model/config.js";
import { loadModel, type KvFormatName } from "../../src/index.js";

const N_POSITIONS = 256;
const KLD_LIMIT = 1e-4;
const KLD_RATIO_LIMIT = 1.2;
const SHAPE = { dim: 256, ffnDim: 512, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 512, contextLength: 512 };
const QUANTIZED_PAIRS: ReadonlyArray<readonly [KvFormatName, KvFormatName]> = [
  ["q8_0", "q4_0"],
  ["q4_0", "q4_0"],
];

/** [label, the model, the same weights without the architecture's feature] */
const MODELS: Array<[string, SynthOptions, SynthOptions]> = [
  [
    "qwen2 (q/k/v biases, NeoX rope, base 1e6)",
    { architecture: "qwen2", preset: { ...SHAPE, ropeBase: 1e6 } },
    { architecture: "llama", attentionBias: true, preset: { ...SHAPE, ropeBase: 1e6 } },
  ],
  [
    "Llama 3 style (rope_freqs factors 1..32, base 500000)",
    // Llama 3.2's factor / low / high with the original context scaled to this model's (factors 1, between, 32)
    { llama3Rope: { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 256 }, preset: { ...SHAPE, ropeBase: 500000 } },
    { preset: { ...SHAPE, ropeBase: 500000 } },
  ],
  [
    "llama with linear rope scaling (rope.scaling.factor 4)",
    { ropeScaling: { type: "linear", factor: 4 }, preset: SHAPE },
    { preset: SHAPE },
  ],
];

let dir = "";
before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "kvsplit-arch-"));
});
after(async () => {
  await closeLlama();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Mean KL(p || q) over rows (test/helpers/synth-prompt.ts). */
const meanKld = (base: Float32Array, test: Float32Array, nRows: number, nVocab: number): number => meanAndMaxKld(base, test, nRows, nVocab).mean;

const tokens = syntheticPromptTokens(N_POSITIONS, SHAPE.vocabSize, 987654);

function write(opts: SynthOptions, name: string): string {
  const file = path.join(dir, `${name}.gguf`);
  synthToFile({ ...opts, type: "f32", seed: 5 }, file);
  return file;
}

/** kvsplit's (N_POSITIONS, nVocab) logits for each K/V pair, one model load. */
function kvsplitLogits(file: string, pairs: ReadonlyArray<readonly [KvFormatName, KvFormatName]>): Float32Array[] {
  const model = loadModel(file);
  try {
    return pairs.map(([k, v]) => {
      const session = model.createSession({ contextSize: SHAPE.contextLength, kv: { k, v } });
      try {
        return session.evalAll(tokens);
      } finally {
        session.dispose();
      }
    });
  } finally {
    model.dispose();
  }
}

MODELS.forEach(([label, opts, without], m) => {
  test(`${label}: kvsplit matches llama.cpp (f32 cache, mean KLD < ${KLD_LIMIT}); quantized K/V cost within ${KLD_RATIO_LIMIT}x llama.cpp's`, async (t) => {
    const file = write(opts, `model-${m}`);
    const pairs: Array<readonly [KvFormatName, KvFormatName]> = [["f32", "f32"], ...QUANTIZED_PAIRS];
    const ours = kvsplitLogits(file, pairs);
    const theirsF32 = await llamaLogProbs(file, tokens);
    const vsLlama = meanKld(theirsF32, ours[0], N_POSITIONS, SHAPE.vocabSize);
    const featureCost = meanKld(theirsF32, await llamaLogProbs(write(without, `without-${m}`), tokens), N_POSITIONS, SHAPE.vocabSize);
    t.diagnostic(`f32 cache: kvsplit vs llama.cpp mean KLD ${vsLlama.toExponential(3)}; llama.cpp without the feature ${featureCost.toExponential(3)}`);
    const failures: string[] = [];
    if (!(vsLlama < KLD_LIMIT)) failures.push(`f32 cache: mean KLD ${vsLlama} vs llama.cpp`);
    if (!(featureCost > 100 * vsLlama)) failures.push(`the feature moves llama.cpp only ${featureCost} (vs ${vsLlama})`);
    for (let p = 1; p < pairs.length; p++) {
      const [k, v] = pairs[p];
      const theirs = meanKld(theirsF32, await llamaLogProbs(file, tokens, { typeK: k, typeV: v }), N_POSITIONS, SHAPE.vocabSize);
      const ourCost = meanKld(ours[0], ours[p], N_POSITIONS, SHAPE.vocabSize);
      const ratio = ourCost / theirs;
      t.diagnostic(`${k}/${v}: llama.cpp KLD from its f32 ${theirs.toExponential(3)}, kvsplit from its f32 ${ourCost.toExponential(3)}, ratio ${ratio.toFixed(3)}`);
      if (!(ratio <= KLD_RATIO_LIMIT)) failures.push(`${k}/${v}: ratio ${ratio.toFixed(3)}`);
    }
    assert.deepEqual(failures, []);
  });
});

test("an unsupported architecture (gpt2) fails through the CLI with exit code 2, naming it and the supported ones", () => {
  const file = write({ architecture: "gpt2", preset: { ...SHAPE, nLayers: 1 } }, "gpt2");
  const cli = path.join(REPO_ROOT, "dist", "src", "cli", "main.js");
  const run = spawnSync(process.execPath, [cli, "run", "-m", file, "-p", "hello", "-n", "1"], { encoding: "utf8" });
  assert.equal(run.status, 2, `exit ${run.status}; stderr: ${run.stderr}`);
  assert.match(run.stderr, /unsupported architecture 'gpt2'/);
  for (const arch of SUPPORTED_ARCHITECTURES) assert.ok(run.stderr.includes(arch), `stderr should list ${arch}: ${run.stderr}`);
  assert.deepEqual([...SUPPORTED_ARCHITECTURES], ["llama", "qwen2"]);
});

test("a rope scaling kvsplit does not compute (yarn) fails through the CLI with exit code 2, naming the supported ones", () => {
  const file = write({ ropeScaling: { type: "yarn", factor: 4 }, preset: { ...SHAPE, nLayers: 1 } }, "yarn");
  const cli = path.join(REPO_ROOT, "dist", "src", "cli", "main.js");
  const run = spawnSync(process.execPath, [cli, "run", "-m", file, "-p", "hello", "-n", "1"], { encoding: "utf8" });
  assert.equal(run.status, 2, `exit ${run.status}; stderr: ${run.stderr}`);
  assert.match(run.stderr, /llama\.rope\.scaling\.type 'yarn' is not supported; supported: none, linear/);
});
