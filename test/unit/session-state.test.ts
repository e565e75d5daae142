/**
 * Saved KV state on a small synthetic model: for every kind of layout (f16 and quantized rows, exact window and
 * sinks, keys per channel), a session loaded from a state continues with the very logits of the session that saved
 * it; the state's size follows the cache's (K8V4 about 0.4 of F16); another model, other K/V formats, a damaged or
 * foreign file, or a context too small are refused with StateFileError naming the problem, and so is a version-1 file
 * holding iq3 blocks (their earlier bit layout).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { useModelDir } from "../helpers/model-dir.js";
import { loadModel } from "../../src/model/model.js";
import { StateFileError } from "../../src/model/session-state.js";
import { synthToFile } from "../../src/gguf/synth.js";
import type { SessionOptions } from "../../src/api.js";

const SHAPE = { dim: 128, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 256, vocabSize: 320, contextLength: 256 };
const md = useModelDir("state", SHAPE, 41);
const TOKENS = Array.from({ length: 70 }, (_, i) => (i * 37 + 11) % 300);
const NEXT = [5, 77, 123];

const CASES: { name: string; opts: SessionOptions }[] = [
  { name: "F16", opts: { kv: { k: "f16", v: "f16" } } },
  { name: "K8V4", opts: { kv: { k: "q8_0", v: "q4_0" } } },
  { name: "K4V4 with a 32-position window and 4 sinks", opts: { kv: { k: "q4_0", v: "q4_0" }, kvWindow: 32, kvSinks: 4 } },
  { name: "keys per channel (q4_1) with a 32-position window", opts: { kv: { k: "q4_1", v: "q8_0", kLayout: "channel" }, kvWindow: 32 } },
  { name: "iq2_e8 with a 24-position window and 2 sinks in q8_0", opts: { kv: { k: "iq2_e8", v: "iq2_e8" }, kvWindow: 24, kvSinks: 2, kvExactFormat: "q8_0" } },
  { name: "K3V3 (iq3_nl)", opts: { kv: { k: "iq3_nl", v: "iq3_nl" } } },
];

for (const c of CASES) {
  test(`a loaded state continues with the saving session's logits: ${c.name}`, () => {
    const model = loadModel(md.modelPath, { threads: 1 });
    try {
      const file = path.join(md.dir, `state-${c.name.replace(/\W+/g, "-")}.kvs`);
      const saving = model.createSession({ contextSize: 128, ...c.opts });
      saving.eval(TOKENS);
      const bytes = saving.saveState(file);
      assert.equal(statSync(file).size, bytes);
      const expected = saving.eval(NEXT);
      const loaded = model.createSession({ contextSize: 160, ...c.opts }); // a larger context takes it too
      loaded.eval([1, 2, 3]); // whatever it held is replaced
      loaded.loadState(file);
      assert.equal(loaded.position, TOKENS.length);
      assert.deepEqual(loaded.tokens, TOKENS);
      assert.deepEqual(loaded.eval(NEXT), expected);
    } finally {
      model.dispose();
    }
  });
}

test("a state's size follows the cache's: K8V4 about 0.4 of F16", () => {
  const model = loadModel(md.modelPath, { threads: 1 });
  try {
    const size = (kv: SessionOptions["kv"]) => {
      const s = model.createSession({ contextSize: 128, kv });
      s.eval(TOKENS);
      const file = path.join(md.dir, "size.kvs");
      s.saveState(file);
      return { state: statSync(file).size, cache: s.kvBytes };
    };
    const f16 = size({ k: "f16", v: "f16" });
    const k8v4 = size({ k: "q8_0", v: "q4_0" });
    const ratio = k8v4.state / f16.state;
    assert.ok(Math.abs(ratio - k8v4.cache / f16.cache) < 0.02, `state ratio ${ratio.toFixed(3)} vs cache ratio ${(k8v4.cache / f16.cache).toFixed(3)}`);
    assert.ok(ratio > 0.38 && ratio < 0.45, `K8V4 / F16 = ${ratio.toFixed(3)}`);
  } finally {
    model.dispose();
  }
});

test("states are refused by another model, other K/V formats, a small context, and damaged files", () => {
  const otherPath = path.join(md.dir, "other.gguf");
  synthToFile({ preset: SHAPE, type: "f32", seed: 42 }, otherPath); // the same shape, other weights
  const model = loadModel(md.modelPath, { threads: 1 });
  const other = loadModel(otherPath, { threads: 1 });
  try {
    const file = path.join(md.dir, "refuse.kvs");
    const s = model.createSession({ contextSize: 128, kv: { k: "q8_0", v: "q4_0" } });
    s.eval(TOKENS);
    s.saveState(file);
    const refused = (fn: () => void, pattern: RegExp) => assert.throws(fn, (e: Error) => e instanceof StateFileError && pattern.test(e.message) && e.message.includes(path.basename(file)));
    refused(() => other.createSession({ contextSize: 128, kv: { k: "q8_0", v: "q4_0" } }).loadState(file), /another model/);
    refused(() => model.createSession({ contextSize: 128, kv: { k: "q8_0", v: "q8_0" } }).loadState(file), /other K\/V formats: layer 0/);
    refused(() => model.createSession({ contextSize: 128, kv: { k: "q8_0", v: "q4_0" }, kvWindow: 32 }).loadState(file), /window/);
    refused(() => model.createSession({ contextSize: 64, kv: { k: "q8_0", v: "q4_0" } }).loadState(file), /more than this session's context/);
    // a window kept in q8_0 rows is not one kept in f16 rows
    const q8File = path.join(md.dir, "refuse-q8.kvs");
    const q8 = model.createSession({ contextSize: 128, kv: { k: "q8_0", v: "q4_0" }, kvWindow: 8, kvExactFormat: "q8_0" });
    q8.eval(TOKENS);
    q8.saveState(q8File);
    assert.throws(
      () => model.createSession({ contextSize: 128, kv: { k: "q8_0", v: "q4_0" }, kvWindow: 8 }).loadState(q8File),
      /saved with rotation true, window 8, sinks 0 \(q8_0 rows\); this session has true, 8, 0 \(f16 rows\)/,
    );
    const data = readFileSync(file);
    writeFileSync(file, data.subarray(0, data.length - 10));
    refused(() => model.createSession({ contextSize: 128, kv: { k: "q8_0", v: "q4_0" } }).loadState(file), /header describes/);
    writeFileSync(file, Buffer.from("GGUF not a state"));
    refused(() => model.createSession({ contextSize: 128, kv: { k: "q8_0", v: "q4_0" } }).loadState(file), /not a kvsplit state file/);
    assert.throws(() => model.createSession({ contextSize: 128 }).loadState(path.join(md.dir, "missing.kvs")), /missing\.kvs: cannot read/);
    // version 1 (before iq3's qh layout changed): loaded unless a layer holds iq3_nl or iq3_e8 blocks
    const asVersion1 = (kv: SessionOptions["kv"], name: string) => {
      const v1 = path.join(md.dir, name);
      const saving = model.createSession({ contextSize: 128, kv });
      saving.eval(TOKENS);
      saving.saveState(v1);
      const bytes = readFileSync(v1);
      assert.equal(bytes.readUInt32LE(8), 2);
      bytes.writeUInt32LE(1, 8);
      writeFileSync(v1, bytes);
      return v1;
    };
    const k8v4v1 = asVersion1({ k: "q8_0", v: "q4_0" }, "v1-k8v4.kvs");
    const loaded = model.createSession({ contextSize: 128, kv: { k: "q8_0", v: "q4_0" } });
    loaded.loadState(k8v4v1);
    assert.equal(loaded.position, TOKENS.length);
    const k4v3v1 = asVersion1({ k: "q4_0", v: "iq3_nl" }, "v1-k4v3.kvs");
    assert.throws(() => model.createSession({ contextSize: 128, kv: { k: "q4_0", v: "iq3_nl" } }).loadState(k4v3v1), (e: Error) =>
      e instanceof StateFileError && /version 1 holds \{"k":"q4_0","v":"iq3_nl"\} blocks \(layer 0\) in iq3's earlier bit layout/.test(e.message));
    const v9 = readFileSync(k8v4v1);
    v9.writeUInt32LE(9, 8);
    writeFileSync(k8v4v1, v9);
    assert.throws(() => model.createSession({ contextSize: 128, kv: { k: "q8_0", v: "q4_0" } }).loadState(k8v4v1), /state file version 9; this kvsplit reads versions 1 and 2/);
  } finally {
    model.dispose();
    other.dispose();
  }
});
