/**
 * Several WebAssembly memories (shards): a small model forced onto many small memories (layers in different
 * memories, KV caches in memories of their own) gives the same logits, bit for bit, as the same model in one memory,
 * for prompts that cross a batch boundary, single-token decoding, several K/V formats and thread counts.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { synthToFile } from "../../src/gguf/synth.js";
import { loadModel } from "../../src/index.js";
import { shardScratchBytes } from "../../src/model/memory.js";
import { placeWeights, PlacementError } from "../../src/model/placement.js";
import { defaultShardBytes, SHARD_BYTES_ENV } from "../../src/runtime/shards.js";
import type { KvPair } from "../../src/api.js";
import type { Model } from "../../src/model/model.js";
import { promptThenGreedy } from "../helpers/greedy-logits.js";

let dir = "";
let file = "";
before(() => {
  dir = mkdtempSync(path.join(tmpdir(), "kvsplit-shards-"));
  file = path.join(dir, "six-layers.gguf");
  // 6 layers of the tiny shape (head_dim 64: quantized K/V blocks and rotation apply), q8_0 matrices
  synthToFile({ preset: { nLayers: 6 }, type: "q8_0", seed: 5 }, file);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A shard limit that holds about two of this model's layers beside the per-shard scratch. */
function tightShardBytes(model: Model, threads: number): number {
  const layer = model.weights.layers[0];
  const layerBytes = [layer.wq, layer.wk, layer.wv, layer.wo, layer.wGate, layer.wUp, layer.wDown].reduce((s, w) => s + w.rows * w.rowBytes, 0);
  const head = model.weights.tokenEmbd.rows * model.weights.tokenEmbd.rowBytes * 2;
  return shardScratchBytes(model.config, threads, model.batchSize) + head + Math.round(2.2 * layerBytes);
}

const prompt = (model: Model, n: number) => Array.from({ length: n }, (_, i) => (i * 37 + 11) % model.config.nVocab);

/** Logits of a 100-token prompt (two batches) and then 5 decoded tokens (greedy), every row. */
function run(model: Model, kv: KvPair, contextSize: number): Float32Array[] {
  const session = model.createSession({ contextSize, kv });
  try {
    return promptThenGreedy(session, prompt(model, 100), 5, 1);
  } finally {
    session.dispose();
  }
}

for (const threads of [1, 2]) {
  test(`sharded and single-memory models give identical logits (${threads} thread${threads > 1 ? "s" : ""})`, () => {
    const single = loadModel(file, { threads, batchSize: 64 });
    const limit = tightShardBytes(single, threads);
    const sharded = loadModel(file, { threads, shardBytes: limit, batchSize: 64 });
    try {
      assert.equal(single.shards.runtimes.length, 1);
      const layerShards = new Set(sharded.weights.layerShard);
      assert.ok(layerShards.size >= 3, `layers spread over ${layerShards.size} memories: ${sharded.weights.layerShard}`);
      assert.deepEqual(sharded.weights.layerShard, [...sharded.weights.layerShard].sort((a, b) => a - b), "consecutive layers share a memory");
      for (const kv of [{ k: "f16", v: "f16" }, { k: "q8_0", v: "q4_0" }, { k: "q4_0", v: "q8_0" }] as KvPair[]) {
        const contextSize = 32768; // f16: 8 MiB a layer, more than a memory has left beside two layers' weights
        const expected = run(single, kv, contextSize);
        const session = sharded.createSession({ contextSize, kv });
        const foreign = Array.from({ length: 6 }, (_, l) => session.cache.layout(l).shard !== sharded.weights.layerShard[l]);
        session.dispose();
        if (kv.k === "f16") {
          assert.ok(foreign.some((f) => f), `${kv.k}/${kv.v}: some layer's cache lives outside its weights' memory: ${foreign}`);
          assert.ok(foreign.some((f) => !f), `${kv.k}/${kv.v}: some layer's cache lives beside its weights: ${foreign}`);
        }
        const got = run(sharded, kv, contextSize);
        assert.equal(got.length, expected.length);
        for (let i = 0; i < got.length; i++) {
          const bad = got[i].findIndex((x, j) => !Object.is(x, expected[i][j]));
          assert.equal(bad, -1, `${kv.k}/${kv.v} row set ${i}: logit ${bad} is ${got[i][bad]}, one memory gave ${expected[i][bad]}`);
        }
      }
      for (const rt of sharded.shards.runtimes) assert.ok(rt.usedBytes <= limit, `shard ${rt.shard} used ${rt.usedBytes} of ${limit} bytes`);
    } finally {
      single.dispose();
      sharded.dispose();
    }
  });
}

test("weight placement: the head and layers in order, a new memory when the next layer does not fit", () => {
  assert.deepEqual(placeWeights(10, [40, 40, 40, 40], 100, 5), { layerShard: [0, 0, 1, 1], shardWeights: [90, 80] });
  assert.deepEqual(placeWeights(0, [50, 50, 50], 100, 0), { layerShard: [0, 0, 1], shardWeights: [100, 50] });
  assert.throws(() => placeWeights(10, [40, 96], 100, 5), (e: unknown) => e instanceof PlacementError && /layer 1's weights need 96 bytes; one memory has room for 95/.test(e.message));
  assert.throws(() => placeWeights(99, [1], 100, 5), /the embedding and output tensors need 99 bytes/);
});

test(`${SHARD_BYTES_ENV} sets the shard limit; anything but a byte count from 1 MiB to 4 GiB is refused by name`, () => {
  const saved = process.env[SHARD_BYTES_ENV];
  try {
    delete process.env[SHARD_BYTES_ENV];
    assert.equal(defaultShardBytes(), 4 * 1024 ** 3);
    process.env[SHARD_BYTES_ENV] = String(64 << 20);
    assert.equal(defaultShardBytes(), 64 << 20);
    for (const bad of ["12", "lots", String(8 * 1024 ** 3), "-5"]) {
      process.env[SHARD_BYTES_ENV] = bad;
      assert.throws(() => defaultShardBytes(), new RegExp(`${SHARD_BYTES_ENV}=${bad}: expected a whole number of bytes`));
    }
  } finally {
    if (saved === undefined) delete process.env[SHARD_BYTES_ENV];
    else process.env[SHARD_BYTES_ENV] = saved;
  }
});
