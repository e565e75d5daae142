/**
 * kvsplit's KV caches against llama.cpp's, on the head_dim-64 models (4 chunks of 512 tokens of the evaluation text,
 * llama-perplexity's chunks, second halves scored):
 * - an f32 cache gives llama.cpp's f32-cache distributions (flash attention off): mean KLD < 1e-5;
 * - each K/V pair costs kvsplit no more quality than it costs llama.cpp: kvsplit's mean KLD against its own f32 cache is
 *   at most 1.2x llama.cpp's mean KLD against llama.cpp's f32 cache, rotation on and off;
 * - kvBytes is the formats' arithmetic.
 * Both engines read the same token ids (llama.cpp's tokenization), so only the KV cache and the forward pass differ.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { sharedPaths, sharedSkip } from "../helpers/shared.js";
import { closeLlama, llamaLogProbs, llamaTokenize } from "../helpers/llamacpp.js";
import { scoredRange, splitIntoChunks } from "../../src/eval/chunks.js";
import { KldAccumulator, type KldSummary } from "../../src/eval/kld.js";
import { loadModel, type KvFormatName, type Model } from "../../src/index.js";

const CTX = 512;
const N_CHUNKS = 4;
/** kvsplit's KLD may exceed llama.cpp's by at most this factor. */
const KLD_RATIO_LIMIT = 1.2;
const PAIRS: ReadonlyArray<readonly [KvFormatName, KvFormatName]> = [
  ["f16", "f16"],
  ["q8_0", "q8_0"],
  ["q8_0", "q4_0"],
  ["q4_0", "q8_0"],
  ["q4_0", "q4_0"],
  ["q5_1", "q5_1"],
  ["iq4_nl", "iq4_nl"],
];
/** Bytes per block and values per block of each format (DESIGN.md section 3, ggml-common.h). */
const BLOCK: Record<string, { bytes: number; values: number }> = {
  f32: { bytes: 4, values: 1 },
  f16: { bytes: 2, values: 1 },
  q8_0: { bytes: 34, values: 32 },
  q5_1: { bytes: 24, values: 32 },
  q4_0: { bytes: 18, values: 32 },
  iq4_nl: { bytes: 18, values: 32 },
};

const skip = sharedSkip(sharedPaths.hd64, sharedPaths.hd64F16, sharedPaths.evalText);
after(() => closeLlama());

async function evalChunks(modelPath: string): Promise<number[][]> {
  const tokens = await llamaTokenize(modelPath, readFileSync(sharedPaths.evalText, "utf8"));
  return splitIntoChunks(tokens, CTX, { bosToken: tokens[0], maxChunks: N_CHUNKS });
}

/** llama.cpp's distributions per chunk: (CTX, nVocab) each, scored rows only. f32/f32 runs with flash attention off. */
async function llamaRun(modelPath: string, chunks: number[][], k: KvFormatName, v: KvFormatName, rotation: boolean): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  const firstOutput = scoredRange(CTX).first;
  for (const chunk of chunks) out.push(await llamaLogProbs(modelPath, chunk, { typeK: k, typeV: v, rotation, firstOutput }));
  return out;
}

/** kvsplit's logits per chunk: (CTX, nVocab) each, one session reset between chunks. */
function kvsplitRun(model: Model, chunks: number[][], k: KvFormatName, v: KvFormatName, rotation: boolean): { logits: Float32Array[]; kvBytes: number } {
  const session = model.createSession({ contextSize: CTX, kv: { k, v }, rotation });
  try {
    const logits = chunks.map((chunk) => {
      session.reset();
      return session.evalAll(chunk);
    });
    return { logits, kvBytes: session.kvBytes };
  } finally {
    session.dispose();
  }
}

function kld(base: Float32Array[], test: Float32Array[], chunks: number[][], nVocab: number): KldSummary {
  const acc = new KldAccumulator(nVocab);
  chunks.forEach((chunk, c) => acc.addChunk(base[c], test[c], chunk));
  return acc.summary();
}

function expectedKvBytes(model: Model, k: KvFormatName, v: KvFormatName): number {
  const { nLayers, nKvHeads, headDim } = model.config;
  const row = (f: KvFormatName): number => ((nKvHeads * headDim) / BLOCK[f].values) * BLOCK[f].bytes;
  return nLayers * CTX * (row(k) + row(v));
}

for (const [name, modelPath] of [
  ["tinystories-2m-hd64.gguf", sharedPaths.hd64],
  ["tinystories-2m-hd64-f16.gguf", sharedPaths.hd64F16],
] as const) {
  test(`${name}: an f32 cache gives llama.cpp's f32-cache distributions (mean KLD < 1e-5)`, { skip }, async (t) => {
    const chunks = await evalChunks(modelPath);
    const reference = await llamaRun(modelPath, chunks, "f32", "f32", true);
    const model = loadModel(modelPath);
    try {
      const ours = kvsplitRun(model, chunks, "f32", "f32", true);
      const s = kld(reference, ours.logits, chunks, model.config.nVocab);
      t.diagnostic(
        `kvsplit vs llama.cpp, f32 caches: mean KLD ${s.kldMean.toExponential(2)}, max ${s.kldMax.toExponential(2)}, ` +
          `same top ${(100 * s.sameTopFraction).toFixed(2)}%, ppl ${s.ppl.toFixed(4)} vs ${s.pplBase.toFixed(4)}`,
      );
      assert.ok(s.kldMean < 1e-5, `mean KLD ${s.kldMean}`);
      assert.equal(ours.kvBytes, expectedKvBytes(model, "f32", "f32"));
    } finally {
      model.dispose();
    }
  });
}

test("tinystories-2m-hd64.gguf: each K/V pair costs kvsplit at most 1.2x llama.cpp's KLD (rotation on and off)", { skip }, async (t) => {
  const modelPath = sharedPaths.hd64;
  const chunks = await evalChunks(modelPath);
  const llamaReference = await llamaRun(modelPath, chunks, "f32", "f32", true);
  const model = loadModel(modelPath);
  const nVocab = model.config.nVocab;
  const failures: string[] = [];
  const lines = ["| K / V | rotation | llama.cpp mean KLD | kvsplit mean KLD | ratio | llama.cpp same top % | kvsplit same top % |", "|---|---|---|---|---|---|---|"];
  try {
    const ourReference = kvsplitRun(model, chunks, "f32", "f32", true).logits;
    for (const [k, v] of PAIRS) {
      // llama.cpp rotates only quantized K/V, so f16/f16 is measured once.
      for (const rotation of k === "f16" && v === "f16" ? [true] : [true, false]) {
        const theirs = kld(llamaReference, await llamaRun(modelPath, chunks, k, v, rotation), chunks, nVocab);
        const run = kvsplitRun(model, chunks, k, v, rotation);
        const ours = kld(ourReference, run.logits, chunks, nVocab);
        const ratio = ours.kldMean / theirs.kldMean;
        lines.push(
          `| ${k} / ${v} | ${rotation ? "on" : "off"} | ${theirs.kldMean.toExponential(2)} | ${ours.kldMean.toExponential(2)} | ${ratio.toFixed(2)} ` +
            `| ${(100 * theirs.sameTopFraction).toFixed(1)} | ${(100 * ours.sameTopFraction).toFixed(1)} |`,
        );
        if (!(ratio <= KLD_RATIO_LIMIT)) failures.push(`${k}/${v} rotation ${rotation ? "on" : "off"}: ratio ${ratio.toFixed(3)}`);
        const bytes = expectedKvBytes(model, k, v);
        if (run.kvBytes !== bytes) failures.push(`${k}/${v}: kvBytes ${run.kvBytes}, expected ${bytes}`);
      }
    }
  } finally {
    model.dispose();
    for (const line of lines) t.diagnostic(line);
  }
  assert.deepEqual(failures, []);
});
