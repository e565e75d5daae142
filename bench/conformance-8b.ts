/**
 * Conformance on the Llama-3-8B shape (the model spread over several WebAssembly memories): over 64 positions of the
 * evaluation text, the mean KL divergence of kvsplit's next-token distributions (f32 cache) from llama.cpp's (f32
 * cache, flash attention off), against llama.cpp's own difference between its f16 cache (flash attention on) and its
 * f32 cache on the same positions. A random 32-layer model is chaotic, so absolute KLDs are large; the bound is
 * llama.cpp's own f16-vs-f32 difference.
 *
 *   node dist/bench/conformance-8b.js [MODEL.gguf] [-t THREADS]
 *
 * Writes bench/results/conformance-8b.json (BENCHMARKS.md shows it) and prints a summary.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadModel } from "../src/index.js";
import { closeLlama, llamaLogProbs } from "../test/helpers/llamacpp.js";
import { sharedPaths } from "../test/helpers/shared.js";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const N_POSITIONS = 64;

export interface ConformanceResult {
  model: string;
  positions: number;
  kvsplit_vs_llamacpp_f32: { kld_mean: number; top1_agree: number };
  llamacpp_f16_vs_f32: { kld_mean: number; top1_agree: number };
  kvsplit_shards: number;
  started: string;
  seconds: number;
}

/** Mean KL(p‖q) over rows and the fraction of rows with the same most likely token; rows are log-probabilities or logits. */
function compare(base: Float32Array, test: Float32Array, nRows: number, nVocab: number): { kld_mean: number; top1_agree: number } {
  const logSoftmax = (x: Float32Array, r: number): Float64Array => {
    const row = Float64Array.from(x.subarray(r * nVocab, (r + 1) * nVocab)); // (nVocab)
    const max = row.reduce((m, v) => Math.max(m, v), -Infinity);
    const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
    return row.map((v) => v - lse);
  };
  const argmax = (row: Float64Array) => row.reduce((best, v, i) => (v > row[best]! ? i : best), 0);
  let total = 0;
  let same = 0;
  for (let r = 0; r < nRows; r++) {
    const p = logSoftmax(base, r);
    const q = logSoftmax(test, r);
    for (let i = 0; i < nVocab; i++) if (p[i]! > -Infinity) total += Math.exp(p[i]!) * (p[i]! - q[i]!);
    if (argmax(p) === argmax(q)) same++;
  }
  return { kld_mean: total / nRows, top1_agree: same / nRows };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const tIndex = args.indexOf("-t");
  const threads = tIndex >= 0 ? Number(args[tIndex + 1]) : 2;
  const modelPath = args[0] && !args[0].startsWith("-") ? args[0] : path.join(REPO_ROOT, ".cache", "llama-8b-q4_K.gguf");
  const started = new Date();
  const t0 = performance.now();
  const model = loadModel(modelPath, { threads, session: { contextSize: 256, kv: { k: "f32", v: "f32" } } });
  const nVocab = model.config.nVocab;
  const tokens = model.tokenizer.encode(readFileSync(sharedPaths.evalText, "utf8").slice(0, 4000), { addSpecial: true }).slice(0, N_POSITIONS);
  if (tokens.length < N_POSITIONS) throw new Error(`the evaluation text gave only ${tokens.length} tokens`);
  const session = model.createSession({ contextSize: 256, kv: { k: "f32", v: "f32" } });
  const ours = session.evalAll(tokens);
  const shards = model.shards.runtimes.length;
  session.dispose();
  model.dispose();
  process.stderr.write(`kvsplit: ${N_POSITIONS} positions in ${((performance.now() - t0) / 1000).toFixed(1)} s over ${shards} memories\n`);
  const theirsF32 = await llamaLogProbs(modelPath, tokens, { typeK: "f32", typeV: "f32", flashAttention: false });
  const theirsF16 = await llamaLogProbs(modelPath, tokens, { typeK: "f16", typeV: "f16", flashAttention: true });
  await closeLlama();
  const result: ConformanceResult = {
    model: path.relative(REPO_ROOT, path.resolve(modelPath)).startsWith("..") ? modelPath : path.relative(REPO_ROOT, path.resolve(modelPath)),
    positions: N_POSITIONS,
    kvsplit_vs_llamacpp_f32: compare(theirsF32, ours, N_POSITIONS, nVocab),
    llamacpp_f16_vs_f32: compare(theirsF32, theirsF16, N_POSITIONS, nVocab),
    kvsplit_shards: shards,
    started: started.toISOString(),
    seconds: (performance.now() - t0) / 1000,
  };
  const dir = path.join(REPO_ROOT, "bench", "results");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "conformance-8b.json");
  writeFileSync(`${file}.tmp`, JSON.stringify(result, null, 1) + "\n");
  renameSync(`${file}.tmp`, file);
  const a = result.kvsplit_vs_llamacpp_f32;
  const b = result.llamacpp_f16_vs_f32;
  console.log(
    `kvsplit (f32 cache, ${shards} memories) vs llama.cpp (f32, flash attention off): mean KLD ${a.kld_mean.toExponential(3)}, top-1 ${(100 * a.top1_agree).toFixed(1)}%\n` +
      `llama.cpp f16 (flash attention on) vs its f32: mean KLD ${b.kld_mean.toExponential(3)}, top-1 ${(100 * b.top1_agree).toFixed(1)}%\n` +
      `target (kvsplit's KLD ≤ llama.cpp's own f16-vs-f32): ${a.kld_mean <= b.kld_mean ? "holds" : "does not hold"}`,
  );
}

await main();
