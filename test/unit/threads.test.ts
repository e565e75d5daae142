/**
 * The model on 1, 2 and 3 threads (loadModel's `threads`): logits bit-identical, for a prompt evaluated at once and
 * for tokens decoded one at a time, on synthetic models large enough that the matrix products really go through the
 * pool (checked by counting its runs), the prompt long enough that swiglu is split across the threads too where a
 * model's feed-forward is wide enough (PARALLEL_SWIGLU_VALUES). Also: one thread means no worker, Model.dispose()
 * stops the workers, and Linear's batched products (several tokens, several matrices, one pool run) equal
 * one-at-a-time products.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { synthShape, synthToFile, type SynthOptions } from "../../src/gguf/synth.js";
import { loadModel } from "../../src/model/model.js";
import type { KvPair } from "../../src/api.js";
import { getFormat, rowBytes } from "../../src/formats/table.js";
import { Linear } from "../../src/model/linear.js";
import { PARALLEL_SWIGLU_VALUES } from "../../src/model/rows.js";
import type { WeightMatrix } from "../../src/model/weights.js";
import { ThreadPool } from "../../src/runtime/pool.js";
import { WasmRuntime } from "../../src/runtime/wasm.js";

const dir = mkdtempSync(path.join(tmpdir(), "kvsplit-threads-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

// 16 tokens: 16 × ffnDim 1024 values reach PARALLEL_SWIGLU_VALUES (16K), 16 × 768 do not
const PROMPT = [1, 300, 17, 255, 42, 42, 7, 511, 3, 99, 128, 64, 9, 200, 31, 480];
const DECODE = [5, 77, 400];

interface Outputs {
  prompt: Float32Array; // (PROMPT.length, nVocab)
  decoded: Float32Array[]; // (nVocab) after each DECODE token
  poolRuns: number;
  /** Kernels that ran in the pool. */
  pooled: Set<string>;
}

function runModel(file: string, threads: number, kv: KvPair): Outputs {
  const model = loadModel(file, { threads });
  assert.equal(model.pool.nThreads, threads);
  let poolRuns = 0;
  const pooled = new Set<string>();
  const run = model.pool.run.bind(model.pool);
  model.pool.run = (tasks) => {
    poolRuns++;
    for (const t of tasks) pooled.add(t.kernel);
    run(tasks);
  };
  try {
    const session = model.createSession({ contextSize: 64, kv });
    const prompt = session.evalAll(PROMPT);
    const decoded = DECODE.map((t) => session.eval([t]));
    session.dispose();
    return { prompt, decoded, poolRuns, pooled };
  } finally {
    model.dispose();
  }
}

function firstDifference(a: Float32Array, b: Float32Array): string {
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) return `index ${i}: ${a[i]} vs ${b[i]}`;
  }
  return "none";
}

const MODELS: Array<{ label: string; opts: SynthOptions; kv: KvPair }> = [
  // dim 256 f32: every product of a layer is ≥ 256 KiB of weights, above Linear's serial cut-off.
  { label: "f32 weights, f16 cache", opts: { preset: { dim: 256, ffnDim: 768, nHeads: 4, nKvHeads: 2 }, type: "f32", seed: 3 }, kv: { k: "f16", v: "f16" } },
  // dim 512 q8_0 (wq alone is 272 KiB), quantized cache.
  { label: "q8_0 weights, K8V4 cache", opts: { preset: { dim: 512, ffnDim: 1024, nHeads: 8, nKvHeads: 2 }, type: "q8_0", seed: 4 }, kv: { k: "q8_0", v: "q4_0" } },
  // q4_K: the prompt's products take the widened K-quant path (matmulWide_q4_K), decoding the matvec one.
  { label: "q4_K weights, K4V8 cache", opts: { preset: { dim: 512, ffnDim: 1024, nHeads: 8, nKvHeads: 2 }, type: "q4_K", seed: 5 }, kv: { k: "q4_0", v: "q8_0" } },
];

for (const m of MODELS) {
  test(`logits are bit-identical on 1, 2 and 3 threads (${m.label})`, () => {
    const file = path.join(dir, `${m.label.replace(/[^a-z0-9]+/gi, "_")}.gguf`);
    synthToFile(m.opts, file);
    const one = runModel(file, 1, m.kv);
    assert.ok(one.prompt.every(Number.isFinite), "non-finite logits");
    assert.ok(new Set(one.prompt.subarray(0, 512)).size > 100, "degenerate logits: the comparison would prove nothing");
    for (const threads of [2, 3]) {
      const many = runModel(file, threads, m.kv);
      assert.ok(many.poolRuns > 0, `${threads} threads: no matrix product went through the pool`);
      const swigluSplit = PROMPT.length * synthShape(m.opts.preset).ffnDim >= PARALLEL_SWIGLU_VALUES;
      assert.equal(many.pooled.has("swiglu_rows_f32"), swigluSplit, `${threads} threads: swiglu ${swigluSplit ? "not " : ""}split across the threads`);
      assert.equal(firstDifference(many.prompt, one.prompt), "none", `${threads} threads, prompt logits`);
      many.decoded.forEach((d, i) => assert.equal(firstDifference(d, one.decoded[i]), "none", `${threads} threads, decoded token ${i}`));
    }
  });
}

test("one thread starts no worker; Model.dispose() stops the workers", async () => {
  const file = path.join(dir, "small.gguf");
  synthToFile({ preset: "tiny", seed: 5 }, file);
  const single = loadModel(file, { threads: 1 });
  let noWorkers = false;
  void single.pool.exited.then(() => (noWorkers = true));
  await new Promise((r) => setImmediate(r));
  assert.ok(noWorkers, "a one-thread model's pool has workers to wait for");
  single.dispose();
  const multi = loadModel(file, { threads: 2 });
  multi.createSession({ contextSize: 8 }).eval([1, 2]);
  multi.dispose();
  const gone = await Promise.race([multi.pool.exited.then(() => true), new Promise((r) => setTimeout(r, 10000, false).unref())]);
  assert.ok(gone, "workers still alive 10 s after Model.dispose()");
  assert.throws(() => loadModel(file, { threads: 0 }), /threads must be an integer in \[1, \d+\], got 0/);
});

test("Linear: several tokens and several matrices in one run equal one token and one matrix at a time, on any thread count", () => {
  const rt = new WasmRuntime();
  const cols = 256;
  const nTokens = 5;
  const matrix = (name: string, format: "f32" | "f16" | "q8_0", rows: number, seed: number): WeightMatrix => {
    const f = getFormat(format);
    const values = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.013 + seed));
    const rb = rowBytes(f, cols);
    const ptr = rt.alloc(rows * rb);
    const bytes = rt.u8(ptr, rows * rb);
    for (let r = 0; r < rows; r++) f.reference.quantizeRow(values.subarray(r * cols, (r + 1) * cols), bytes.subarray(r * rb, (r + 1) * rb));
    return { name, shard: 0, ptr, format: f, tiled: false, rows, cols, rowBytes: rb };
  };
  // 1040 rows of q8_0 (~280 KiB) and 300 of f32 (~300 KiB): both above the serial cut-off; 1040 and 300 are not
  // multiples of the split grain.
  const mats = [matrix("a", "q8_0", 1040, 1), matrix("b", "f32", 300, 2), matrix("c", "f16", 33, 3)];
  const x = rt.alloc(nTokens * cols * 4); // f32 (nTokens, cols)
  rt.f32(x, nTokens * cols).set(Float32Array.from({ length: nTokens * cols }, (_, i) => Math.cos(i * 0.7)));
  const outs = mats.map((w) => rt.alloc(nTokens * w.rows * 4)); // f32 (nTokens, rows) each
  const snapshot = () => mats.map((w, i) => rt.f32(outs[i], nTokens * w.rows).slice());

  // Reference: one Linear, no pool, one token and one matrix per call.
  const serial = new Linear(rt, cols);
  for (let t = 0; t < nTokens; t++) {
    serial.input(x + t * cols * 4, cols);
    mats.forEach((w, i) => serial.matvec(outs[i] + t * w.rows * 4, w));
  }
  const want = snapshot();
  assert.ok(want.every((o) => o.every(Number.isFinite)));
  for (const threads of [1, 2, 3]) {
    const pool = new ThreadPool(rt.memory, threads);
    let poolRuns = 0;
    const run = pool.run.bind(pool);
    pool.run = (tasks) => {
      poolRuns++;
      run(tasks);
    };
    try {
      const linear = new Linear(rt, cols, pool);
      outs.forEach((o, i) => rt.f32(o, nTokens * mats[i].rows).fill(NaN));
      linear.input(x, cols, nTokens);
      linear.run(mats.map((w, i) => [outs[i], w] as const));
      assert.equal(poolRuns, threads === 1 ? 0 : 1, `${threads} threads: every product of the run in one pool run`);
      snapshot().forEach((got, i) => assert.equal(firstDifference(got, want[i]), "none", `${threads} threads, matrix ${mats[i].name}`));
      linear.dispose();
    } finally {
      pool.dispose();
    }
  }
});
