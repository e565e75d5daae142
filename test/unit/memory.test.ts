/**
 * The memory plan (src/model/memory.ts): KV bytes against DESIGN.md's TinyLlama table, the plan against what a real
 * model and session allocate, the largest context that fits, several 4 GiB memories counted, and refusals (above
 * the budget or the machine's memory, a layer's cache over one memory) from the header, before any large allocation
 * (sparse GGUF files: header written, data never touched).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, rmSync, ftruncateSync, writeSync } from "node:fs";
import { tmpdir, totalmem } from "node:os";
import path from "node:path";
import { readGgufHeader } from "../../src/gguf/reader.js";
import { synthLlama, synthToFile, type SynthOptions } from "../../src/gguf/synth.js";
import { planGguf } from "../../src/gguf/writer.js";
import { configFromGguf, type ModelConfig } from "../../src/model/config.js";
import { checkMemoryPlan, KV_RESERVED_BYTES, MemoryPlanError, planMemory, RESERVED_BYTES } from "../../src/model/memory.js";
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
  const available = 4 * GIB;
  for (const kv of [pair("f16", "f16"), pair("q8_0", "q4_0")]) {
    const plan = planMemory(config, weights, 1024, kv, { available });
    const n = plan.maxContextSize;
    assert.ok(n > 100_000, `${kv.k}/${kv.v}: ${n} tokens fit next to 1.2 GB of weights`);
    assert.ok(planMemory(config, weights, n, kv, { available }).total <= available);
    assert.ok(planMemory(config, weights, n + 1, kv, { available }).total > available);
  }
  const max = (kv: KvPair) => planMemory(config, weights, 1, kv, { available }).maxContextSize;
  assert.ok(max(pair("q4_0", "q4_0")) > max(pair("f16", "f16")));
});

test("past 4 GiB the plan counts several WebAssembly memories, and the machine's memory is the limit", () => {
  const { config, weights } = readModel(tinyllamaQ8);
  const small = planMemory(config, weights, 2048, pair("f16", "f16"), { available: 24 * GIB });
  assert.equal(small.shards, 1, "1.2 GB of weights and 44 MiB of cache: one memory");
  // 256K tokens of f16 cache: 5.5 GiB of KV, more than one memory holds beside the weights
  const big = planMemory(config, weights, 1 << 18, pair("f16", "f16"), { available: 24 * GIB });
  assert.equal(big.kv / GIB, 5.5);
  assert.ok(big.shards >= 2, `weights + 5.5 GiB of KV: ${big.shards} memories`);
  assert.ok(big.total < big.available && big.shardLimit === undefined);
  assert.ok(big.maxContextSize > 1 << 18);
  // the default budget is this machine's memory
  assert.equal(planMemory(config, weights, 1, pair("f16", "f16")).available, totalmem());
});

test("model + KV cache over the machine's memory: MemoryPlanError says what is needed, what is available and what would fit", () => {
  const { config, weights } = readModel(tinyllamaQ8);
  assert.ok(weights > 1.0 * GIB && weights < 1.3 * GIB, `q8_0 TinyLlama weights: ${weights}`);
  const available = 8 * GIB;
  const fits = checkMemoryPlan(config, weights, 2048, pair("f16", "f16"), { available });
  assert.ok(fits.total < available);
  const ctx = 1 << 19;
  assert.throws(
    () => checkMemoryPlan(config, weights, ctx, pair("f16", "f16"), { available }),
    (e: unknown) => {
      assert.ok(e instanceof MemoryPlanError);
      assert.ok(e.plan.total > available);
      assert.match(e.message, /need \d+\.\d\d GiB of memory \(weights 1\.\d\d GiB, KV cache 11\.00 GiB for 524288 tokens of K\/V f16\/f16, scratch/);
      assert.match(e.message, /but 8\.00 GiB is available \(this machine's memory\)/);
      assert.match(e.message, new RegExp(`at most ${e.plan.maxContextSize} tokens of context fit with K/V f16/f16`));
      assert.ok(planMemory(config, weights, e.plan.maxContextSize, pair("f16", "f16"), { available }).total <= available);
      return true;
    },
  );
  // one layer's cache must fit in one 4 GiB memory: 22 layers × 1 KiB per token of f16 at 4M tokens is 4 GiB a layer
  assert.throws(
    () => checkMemoryPlan(config, weights, 1 << 22, pair("f16", "f16"), { available: 1024 * GIB }),
    /one layer's KV cache at 4194304 tokens does not fit in one WebAssembly memory \(4\.00 GiB\): at most \d+ tokens of context fit/,
  );
});

test("weights over 4 GiB (sparse f32 TinyLlama) are planned over several memories; loadModel refuses from the header", () => {
  const { config, weights } = readModel(tinyllamaF32);
  assert.ok(weights > MAX_WASM_BYTES, `f32 TinyLlama weights: ${weights}`);
  const plan = planMemory(config, weights, 2048, pair("q4_0", "q4_0"), { available: 24 * GIB });
  assert.ok(plan.shards >= 2 && plan.maxContextSize > 2048, `${plan.shards} memories, ${plan.maxContextSize} tokens`);
  assert.throws(() => checkMemoryPlan(config, weights, 512, pair("f16", "f16"), { available: 4 * GIB }), /the weights alone leave no room/);
  const rssBefore = process.memoryUsage().rss;
  // a budget below the weights, and a context past this machine's memory: refused before a weight is read
  assert.throws(() => loadModel(tinyllamaF32, { threads: 1, memoryLimit: 4 * GIB, session: { contextSize: 512 } }), MemoryPlanError);
  assert.throws(
    () => loadModel(tinyllamaF32, { threads: 1, session: { contextSize: 1 << 24, kv: pair("f16", "f16") } }),
    (e: unknown) => e instanceof MemoryPlanError && /this machine's memory/.test(e.message),
  );
  const grew = process.memoryUsage().rss - rssBefore;
  assert.ok(grew < 256 * MIB, `no large allocation happened (rss grew ${grew} bytes)`);
});

test("the plan's scratch estimate covers what the model and a real session allocate", () => {
  const file = path.join(dir, "tiny.gguf");
  synthToFile({ preset: "tiny", seed: 1 }, file);
  const model = loadModel(file, { threads: 1 });
  try {
    const used = () => model.shards.usedBytes;
    for (const [ctx, kv] of [[512, pair("f16", "f16")], [300, pair("q8_0", "q4_0")]] as const) {
      const plan = planMemory(model.config, model.weights.bytes, ctx, kv, { threads: model.pool.nThreads, batchTokens: model.batchSize });
      const session = model.createSession({ contextSize: ctx, kv });
      try {
        assert.equal(session.kvBytes, plan.kv, "the KV part is exact");
        session.evalAll(Array.from({ length: 70 }, (_, i) => (i * 7 + 1) % model.config.nVocab)); // lazily sized buffers too
        assert.equal(model.shards.runtimes.length, plan.shards);
        // the plan keeps a reserve per memory for the model's scratch and one for the session's
        const estimate = plan.total - RESERVED_BYTES - KV_RESERVED_BYTES;
        assert.ok(used() <= estimate, `model + session allocated ${used()} bytes; plan total without the reserves = ${estimate}`);
        assert.ok(used() >= estimate / 4, `the estimate is not wildly high: ${used()} of ${estimate}`);
      } finally {
        session.dispose();
      }
    }
    assert.ok(model.weights.bytes === readModel(file).weights, "weightBytes(gguf) is what loadWeights placed");
  } finally {
    model.dispose();
  }
});

test("a kv option that is not { k, v } pairs (e.g. the string \"K8V4\") is refused with a message naming it and the shorthand's helper", () => {
  const file = path.join(dir, "tiny-kv.gguf");
  synthToFile({ preset: "tiny", seed: 2 }, file);
  const model = loadModel(file, { threads: 1 });
  try {
    const bad = (kv: unknown) => () => model.createSession({ contextSize: 64, kv: kv as KvPair });
    assert.throws(bad("K8V4"), (e: unknown) => e instanceof RangeError && /kv must be \{ k, v \}.*got "K8V4".*kvPairsOf\(parseKvConfig/.test(e.message));
    assert.throws(bad({ k: "q8_0" }), /kv must be \{ k, v \}.*got \{"k":"q8_0"\}/);
    assert.throws(bad(Array.from({ length: model.config.nLayers }, (_, l) => (l === 1 ? null : pair("q8_0", "q4_0")))), /kv must be \{ k, v \}.*got null/);
    assert.throws(bad(Array.from({ length: model.config.nLayers }, (_, l) => (l === 1 ? undefined : pair("q8_0", "q4_0")))), /kv must be \{ k, v \}.*got undefined/);
    const session = model.createSession({ contextSize: 64, kv: pair("q8_0", "q4_0") });
    session.dispose();
  } finally {
    model.dispose();
  }
});
