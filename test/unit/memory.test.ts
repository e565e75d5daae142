/**
 * The 4 GiB plan (src/model/memory.ts): KV bytes against DESIGN.md's TinyLlama table, the plan against what a real
 * session allocates, the largest context that fits, and models whose weights claim more than 4 GiB (sparse GGUF
 * files: header written, data never touched) failing before any large allocation.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, rmSync, ftruncateSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { readGgufHeader } from "../../src/gguf/reader.js";
import { synthLlama, synthToFile, type SynthOptions } from "../../src/gguf/synth.js";
import { planGguf } from "../../src/gguf/writer.js";
import { configFromGguf, type ModelConfig } from "../../src/model/config.js";
import { checkMemoryPlan, MemoryPlanError, planMemory, RESERVED_BYTES } from "../../src/model/memory.js";
import * as sessionModule from "../../src/model/session.js";
import { weightBytes } from "../../src/model/weights.js";
import { loadModel } from "../../src/index.js";
import { ModelError } from "../../src/model/errors.js";
import { MAX_WASM_BYTES } from "../../src/runtime/wasm.js";
import type { KvPair } from "../../src/api.js";

let dir = "";
before(() => {
  dir = mkdtempSync(path.join(tmpdir(), "kvsplit-memory-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;

/** A GGUF whose header is real and whose tensor data is a hole: the file has its full size but occupies ~no disk. */
function sparseModel(name: string, opts: SynthOptions): string {
  const file = path.join(dir, name);
  const layout = planGguf(synthLlama(opts));
  const fd = openSync(file, "w");
  try {
    writeSync(fd, layout.header);
    ftruncateSync(fd, layout.fileSize);
  } finally {
    closeSync(fd);
  }
  return file;
}

function readModel(file: string): { config: ModelConfig; weights: number } {
  const gguf = readGgufHeader(file);
  return { config: configFromGguf(gguf), weights: weightBytes(gguf) };
}

let tinyllamaQ8 = "";
let tinyllamaF32 = "";
before(() => {
  tinyllamaQ8 = sparseModel("tinyllama-q8_0.gguf", { preset: "tinyllama-1.1b", type: "q8_0" });
  tinyllamaF32 = sparseModel("tinyllama-f32.gguf", { preset: "tinyllama-1.1b", type: "f32" });
});

const pair = (k: KvPair["k"], v: KvPair["v"]): KvPair => ({ k, v });

test("KV bytes match DESIGN.md's TinyLlama table at 8192 tokens (22 layers, 4 kv heads, head_dim 64)", () => {
  const { config, weights } = readModel(tinyllamaQ8);
  assert.deepEqual([config.nLayers, config.nKvHeads, config.headDim], [22, 4, 64]);
  const expectMiB: Array<[KvPair, number]> = [
    [pair("f16", "f16"), 176.0],
    [pair("q8_0", "q8_0"), 93.5],
    [pair("q8_0", "q4_0"), 71.5],
    [pair("q4_0", "q4_0"), 49.5],
  ];
  for (const [kv, mib] of expectMiB) {
    const plan = planMemory(config, weights, 8192, kv);
    assert.equal(plan.kv / MIB, mib, `${kv.k}/${kv.v}`);
    assert.equal(plan.total, plan.weights + plan.kv + plan.scratch);
    assert.equal(plan.weights, weights);
  }
  // per-layer pairs: layer 0 f16/f16, the rest q4_0/q4_0
  const mixed = Array.from({ length: 22 }, (_, l) => (l === 0 ? pair("f16", "f16") : pair("q4_0", "q4_0")));
  assert.equal(planMemory(config, weights, 8192, mixed).kv / MIB, 176 / 22 + (49.5 * 21) / 22);
});

test("the largest context that fits is exact for the plan: one more token does not fit", () => {
  const { config, weights } = readModel(tinyllamaQ8);
  for (const kv of [pair("f16", "f16"), pair("q8_0", "q4_0")]) {
    const plan = planMemory(config, weights, 1024, kv);
    const n = plan.maxContextSize;
    assert.ok(n > 100_000, `${kv.k}/${kv.v}: ${n} tokens fit next to 1.2 GB of weights`);
    assert.ok(planMemory(config, weights, n, kv).total <= MAX_WASM_BYTES);
    assert.ok(planMemory(config, weights, n + 1, kv).total > MAX_WASM_BYTES);
  }
  assert.ok(planMemory(config, weights, 1, pair("q4_0", "q4_0")).maxContextSize > planMemory(config, weights, 1, pair("f16", "f16")).maxContextSize);
});

test("model + KV cache over 4 GiB: MemoryPlanError says what is needed, what is available and what would fit", () => {
  const { config, weights } = readModel(tinyllamaQ8);
  assert.ok(weights > 1.0 * GIB && weights < 1.3 * GIB, `q8_0 TinyLlama weights: ${weights}`);
  const fits = checkMemoryPlan(config, weights, 2048, pair("f16", "f16"));
  assert.ok(fits.total < MAX_WASM_BYTES);
  const ctx = 1 << 18;
  assert.throws(
    () => checkMemoryPlan(config, weights, ctx, pair("f16", "f16")),
    (e: unknown) => {
      assert.ok(e instanceof MemoryPlanError);
      assert.ok(e.plan.total > MAX_WASM_BYTES);
      assert.match(e.message, /need \d+\.\d\d GiB of WebAssembly memory \(weights 1\.\d\d GiB, KV cache 5\.50 GiB for 262144 tokens of K\/V f16\/f16, scratch/);
      assert.match(e.message, /holds at most 4\.00 GiB/);
      assert.match(e.message, new RegExp(`at most ${e.plan.maxContextSize} tokens of context fit with K/V f16/f16`));
      return true;
    },
  );
});

test("weights over 4 GiB (sparse f32 TinyLlama): the plan and loadModel refuse before allocating", () => {
  const { config, weights } = readModel(tinyllamaF32);
  assert.ok(weights > MAX_WASM_BYTES, `f32 TinyLlama weights: ${weights}`);
  const plan = planMemory(config, weights, 1, pair("q4_0", "q4_0"));
  assert.equal(plan.maxContextSize, 0);
  assert.throws(() => checkMemoryPlan(config, weights, 512, pair("f16", "f16")), /the weights alone leave no room/);
  const rssBefore = process.memoryUsage().rss;
  assert.throws(() => loadModel(tinyllamaF32, { threads: 1 }), (e: unknown) => e instanceof ModelError && /4 GiB/.test(e.message));
  const grew = process.memoryUsage().rss - rssBefore;
  assert.ok(grew < 256 * MIB, `no large allocation happened (rss grew ${grew} bytes)`);
});

/** Tokens a session's scratch is sized for (session.ts MAX_BATCH while prompts run in micro-batches; else 1). */
const sessionBatch = Number((sessionModule as Record<string, unknown>).MAX_BATCH ?? 1);

test("the plan's scratch estimate (without its fixed reserve) covers what a real session allocates", () => {
  const file = path.join(dir, "tiny.gguf");
  synthToFile({ preset: "tiny", seed: 1 }, file);
  const model = loadModel(file, { threads: 1 });
  try {
    const highWater = () => (model.runtime as unknown as { allocator: { highWater: number } }).allocator.highWater;
    for (const [ctx, kv] of [[512, pair("f16", "f16")], [300, pair("q8_0", "q4_0")]] as const) {
      const plan = planMemory(model.config, model.weights.bytes, ctx, kv, { threads: model.pool.nThreads, batchTokens: sessionBatch });
      const before = highWater();
      const session = model.createSession({ contextSize: ctx, kv });
      try {
        assert.equal(session.kvBytes, plan.kv, "the KV part is exact");
        session.evalAll(Array.from({ length: 70 }, (_, i) => (i * 7 + 1) % model.config.nVocab)); // lazily sized buffers too
        const used = highWater() - before;
        const estimate = plan.kv + plan.scratch - RESERVED_BYTES;
        assert.ok(used <= estimate, `session allocated ${used} bytes; plan kv + scratch without the reserve = ${estimate}`);
        assert.ok(used >= estimate / 4, `the estimate is not wildly high: ${used} of ${estimate}`);
      } finally {
        session.dispose();
      }
    }
    assert.ok(model.weights.bytes === readModel(file).weights, "weightBytes(gguf) is what loadWeights placed");
  } finally {
    model.dispose();
  }
});
