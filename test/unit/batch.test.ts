/**
 * Continuous batching's core: one forward pass over several sessions (a prompt chunk of one, single next tokens of
 * others, different K/V formats) gives each session the very logits it gets when evaluated alone, and leaves each
 * cache as a lone evaluation would (the next evaluation agrees too).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { useModelDir } from "../helpers/model-dir.js";
import { loadModel } from "../../src/model/model.js";
import { evalBatch } from "../../src/model/batch.js";
import { DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE } from "../../src/model/defaults.js";
import type { SessionOptions } from "../../src/api.js";

const md = useModelDir("batch", { dim: 128, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 256, vocabSize: 320, contextLength: 256 }, 51);

const CONFIGS: SessionOptions[] = [
  { kv: { k: "f16", v: "f16" } },
  { kv: { k: "q8_0", v: "q4_0" } },
  { kv: { k: "q4_0", v: "q4_0" }, kvWindow: 32 },
];
const PREFIXES = [[1, 5, 9, 13], [1, 200, 7], [1, 42, 43, 44, 45, 46]];

test("a batched pass over several sessions gives each the logits of its lone evaluation, bit for bit", () => {
  const model = loadModel(md.modelPath, { threads: 2 });
  try {
    const make = () => CONFIGS.map((c, i) => {
      const s = model.createSession({ contextSize: 128, ...c });
      s.eval(PREFIXES[i]!);
      return s;
    });
    const lone = make();
    const batched = make();
    // step 1: session 0 a chunk of 5 prompt tokens, sessions 1 and 2 one token each
    const steps = [[11, 12, 13, 14, 15], [17], [99]];
    const expected = lone.map((s, i) => s.eval(steps[i]!));
    const got = evalBatch(model, batched.map((session, i) => ({ session, tokens: steps[i]! })));
    got.forEach((g, i) => assert.deepEqual(g, expected[i], `session ${i}`));
    batched.forEach((s, i) => assert.equal(s.position, lone[i]!.position));
    // step 2: the caches agree too: another batched step against lone evaluation
    const next = [[3], [4, 5], [6]];
    const expected2 = lone.map((s, i) => s.eval(next[i]!));
    const got2 = evalBatch(model, [{ session: batched[2]!, tokens: next[2]! }, { session: batched[0]!, tokens: next[0]! }, { session: batched[1]!, tokens: next[1]! }]);
    assert.deepEqual(got2, [expected2[2], expected2[0], expected2[1]]);
    assert.deepEqual(batched[0]!.tokens, lone[0]!.tokens);
    // step 3: sessions whose caches share pool runs (no exact window: every store in one run, then every attention)
    assert.ok(batched[0]!.cache.runsTogether(0) && batched[1]!.cache.runsTogether(0) && !batched[2]!.cache.runsTogether(0));
    const last = [[21, 22], [23]];
    const expected3 = last.map((t, i) => lone[i]!.eval(t));
    const got3 = evalBatch(model, last.map((tokens, i) => ({ session: batched[i]!, tokens })));
    assert.deepEqual(got3, expected3);
    assert.deepEqual(batched[0]!.eval([7]), lone[0]!.eval([7]));
  } finally {
    model.dispose();
  }
});

test("evalBatch refuses a session twice, another model's session, an empty step and an oversized batch", () => {
  const model = loadModel(md.modelPath, { threads: 1 });
  const other = loadModel(md.modelPath, { threads: 1 });
  try {
    const s = model.createSession({ contextSize: 128 });
    assert.throws(() => evalBatch(model, [{ session: s, tokens: [1] }, { session: s, tokens: [2] }]), /twice/);
    assert.throws(() => evalBatch(model, [{ session: other.createSession({ contextSize: 64 }), tokens: [1] }]), /belong to this model/);
    assert.throws(() => evalBatch(model, [{ session: s, tokens: [] }]), /without tokens/);
    assert.throws(() => evalBatch(model, [{ session: model.createSession({ contextSize: 1024 }), tokens: new Array(model.batchSize + 1).fill(1) }]), new RegExp(`at most ${DEFAULT_BATCH_SIZE} \\(the model's batchSize\\)`));
    assert.deepEqual(evalBatch(model, []), []);
  } finally {
    model.dispose();
    other.dispose();
  }
});

test("more generating slots than one pass takes: they take turns, and each gives its lone answer", async () => {
  const { SlotPool } = await import("../../src/serve/slots.js");
  const { Sampler } = await import("../../src/model/sampler.js");
  const { generate } = await import("../../src/model/generate.js");
  const model = loadModel(md.modelPath, { threads: 1, batchSize: 8 });
  try {
    const n = model.batchSize + 6;
    const pool = new SlotPool(model, { contextSize: 32, kv: { k: "q8_0", v: "q4_0" }, parallel: n });
    const prompts = Array.from({ length: n }, (_, i) => [1, 10 + i, 20 + (i % 7)]);
    const texts = await Promise.all(prompts.map(async (prompt) => {
      const slot = await pool.acquire(prompt);
      const run = pool.run(slot, prompt, { maxTokens: 12, sampler: new Sampler({ temperature: 0 }) });
      for await (const _ of run.stream);
      pool.release(slot);
      return run.result()!.tokens;
    }));
    assert.ok(pool.scheduler.widestStep <= model.batchSize);
    assert.equal(pool.scheduler.widestStep, model.batchSize, "full passes ran");
    for (const i of [0, 1, n - 1]) {
      const alone = generate(model.createSession({ contextSize: 32, kv: { k: "q8_0", v: "q4_0" } }), prompts[i]!, { maxTokens: 12, sampler: new Sampler({ temperature: 0 }), isEog: (id) => model.tokenizer.isEog(id) });
      assert.deepEqual(texts[i], alone.tokens, `slot request ${i}`);
    }
    pool.dispose();
  } finally {
    model.dispose();
  }
});

test("a model's batchSize: a prompt's logits and next steps do not depend on it; sizes outside 1..MAX_BATCH_SIZE are refused by name", () => {
  const prompt = Array.from({ length: 150 }, (_, i) => (i * 13 + 3) % 320);
  const rowsOf = (batchSize: number | undefined) => {
    const model = loadModel(md.modelPath, { threads: 2, batchSize });
    try {
      assert.equal(model.batchSize, batchSize ?? DEFAULT_BATCH_SIZE);
      const s = model.createSession({ contextSize: 256, kv: { k: "q8_0", v: "q4_0" } });
      return [s.evalAll(prompt), s.eval([7]), s.eval([8, 9, 10])];
    } finally {
      model.dispose();
    }
  };
  const expected = rowsOf(1); // one token a pass: the single-token kernels
  for (const batchSize of [5, 64, undefined, 150]) assert.deepEqual(rowsOf(batchSize), expected, `batchSize ${batchSize ?? "default"}`);
  for (const bad of [0, -1, 2.5, MAX_BATCH_SIZE + 1, NaN]) {
    assert.throws(() => loadModel(md.modelPath, { threads: 1, batchSize: bad }), new RegExp(`batchSize must be an integer from 1 to ${MAX_BATCH_SIZE}, got ${bad}`));
  }
});
