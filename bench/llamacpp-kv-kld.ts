/**
 * llama.cpp's own K/V-cache quantization quality: mean KL divergence (and Δppl, same top token) of each K/V pair
 * against llama.cpp's f32-cache reference (flash attention off), rotation on and off.
 *
 *   node dist/bench/llamacpp-kv-kld.js [MODEL.gguf] [--chunks 4] [--ctx 512]
 *
 * Chunks are llama-perplexity's (src/eval/chunks.ts): ctx-token chunks, first token BOS, second halves scored.
 * Prints a markdown table on stdout.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { sharedPaths } from "../test/helpers/shared.js";
import { closeLlama, llamaLogProbs, llamaTokenize, llamaVocabSize } from "../test/helpers/llamacpp.js";
import { scoredRange, splitIntoChunks } from "../src/eval/chunks.js";
import { KldAccumulator, type KldSummary } from "../src/eval/kld.js";
import type { KvFormatName } from "../src/formats/types.js";

export const LLAMA_KV_PAIRS: ReadonlyArray<readonly [KvFormatName, KvFormatName]> = [
  ["f16", "f16"],
  ["q8_0", "q8_0"],
  ["q8_0", "q4_0"],
  ["q4_0", "q8_0"],
  ["q4_0", "q4_0"],
  ["q5_1", "q5_1"],
  ["iq4_nl", "iq4_nl"],
];

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
}

async function main(): Promise<void> {
  const modelPath = process.argv[2] && !process.argv[2].startsWith("--") ? process.argv[2] : sharedPaths.hd64;
  const nChunks = option("--chunks", 4);
  const ctx = option("--ctx", 512);
  const t0 = performance.now();
  const tokens = await llamaTokenize(modelPath, readFileSync(sharedPaths.evalText, "utf8"));
  const nVocab = await llamaVocabSize(modelPath);
  const chunks = splitIntoChunks(tokens, ctx, { bosToken: tokens[0], maxChunks: nChunks });
  const firstOutput = scoredRange(ctx).first;
  const reference: Float32Array[] = [];
  for (const chunk of chunks) reference.push(await llamaLogProbs(modelPath, chunk, { typeK: "f32", typeV: "f32", flashAttention: false, firstOutput }));
  const tRef = performance.now();

  const rows: string[] = [];
  for (const [k, v] of LLAMA_KV_PAIRS) {
    const cells: KldSummary[] = [];
    const seconds: number[] = [];
    for (const rotation of [true, false]) {
      const t = performance.now();
      const acc = new KldAccumulator(nVocab);
      for (let c = 0; c < chunks.length; c++) {
        acc.addChunk(reference[c], await llamaLogProbs(modelPath, chunks[c], { typeK: k, typeV: v, flashAttention: true, rotation, firstOutput }), chunks[c]);
      }
      cells.push(acc.summary());
      seconds.push((performance.now() - t) / 1000);
    }
    const [on, off] = cells;
    rows.push(
      `| ${k} / ${v} | ${signed(on.deltaPplPct)} / ${signed(off.deltaPplPct)} | ${on.kldMean.toExponential(2)} / ${off.kldMean.toExponential(2)} ` +
        `| ${on.kldP99.toExponential(2)} / ${off.kldP99.toExponential(2)} | ${(100 * on.sameTopFraction).toFixed(1)} / ${(100 * off.sameTopFraction).toFixed(1)} ` +
        `| ${seconds[0].toFixed(1)} / ${seconds[1].toFixed(1)} |`,
    );
    process.stderr.write(`${k}/${v} done\n`);
  }
  const refPpl = new KldAccumulator(nVocab);
  for (let c = 0; c < chunks.length; c++) refPpl.addChunk(reference[c], reference[c], chunks[c]);
  console.log(`llama.cpp (node-llama-cpp 3.21.1, CPU, 2 threads) on ${path.basename(modelPath)}: ${chunks.length} chunks of ${ctx}, ` +
    `${refPpl.summary().count} positions scored; reference f32 cache, flash attention off: ppl ${refPpl.summary().pplBase.toFixed(4)} ` +
    `(${((tRef - t0) / 1000).toFixed(1)} s); quantized caches with flash attention on. Values rotation on / off.`);
  console.log("");
  console.log("| K / V | Δppl % | mean KLD | p99 KLD | same top % | seconds |");
  console.log("|---|---|---|---|---|---|");
  for (const r of rows) console.log(r);
  console.log("");
  console.log(`total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  await closeLlama();
}

function signed(x: number): string {
  return `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(3)}`;
}

await main();
