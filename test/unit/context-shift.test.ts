/**
 * Context shift for every K/V format, against a fresh session evaluating the kept tokens at their new positions, on
 * llama (adjacent-pair rope) and qwen2 (NeoX rope, key biases) synthetic models: keep 8 tokens, drop 36. Layer 0's keys
 * depend only on token and position, so there the shifted keys must be the fresh ones (f32: to rounding; quantized:
 * within twice the format's own error, being quantized a second time) and V rows move unchanged. Deeper layers keep
 * what they computed while the dropped tokens were in context (as in llama.cpp), so the next-token distributions
 * differ from re-evaluation by a KL divergence that the test reports.
 * Layouts tied to positions (an exact window, keys per channel) and sinks outside the kept prefix are refused.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { useModelDir } from "../helpers/model-dir.js";
import { loadModel, type Model } from "../../src/model/model.js";
import { compareRow } from "../../src/eval/kld.js";
import { rotateRowReference } from "../../src/kv/rotation.js";
import type { KvPair, SessionOptions } from "../../src/api.js";
import type { KvFormatName } from "../../src/formats/types.js";

const SHAPE = { dim: 128, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 256, vocabSize: 320, contextLength: 256 };
const llama = useModelDir("shift-llama", SHAPE, 71);
const qwen = useModelDir("shift-qwen", { ...SHAPE, architecture: "qwen2" } as typeof SHAPE, 72);
const TOKENS = Array.from({ length: 80 }, (_, i) => (i * 53 + 7) % 300);
const NEXT = [11, 222, 33];
const KEEP = 8;
const DROP = 36;

/** Mean KL(base || test) over the rows of two (rows, nVocab) logits arrays. */
function meanKld(base: Float32Array, testLogits: Float32Array, nVocab: number): number {
  const rows = base.length / nVocab;
  let sum = 0;
  for (let r = 0; r < rows; r++) sum += compareRow(base, testLogits, r, nVocab, null).kld;
  return sum / rows;
}

/** Layer 0's decoded keys (rotated back) and V bytes at positions [from, to) of a session's cache. */
function layer0Rows(session: ReturnType<Model["createSession"]>, from: number, to: number): { keys: Float32Array[]; values: Uint8Array[] } {
  const layout = session.cache.layout(0);
  const keys: Float32Array[] = [];
  const values: Uint8Array[] = [];
  for (let p = from; p < to; p++) {
    const row = new Float32Array(layout.kRowValues); // (kRowValues) decoded by the TypeScript reference
    layout.k.reference.dequantizeRow(session.cache.packedRow(0, "k", p), row);
    if (layout.rotation.k > 0) rotateRowReference(row, layout.rotation.k); // H is its own inverse
    keys.push(row.slice(0, session.cache.layout(0).kRowValues));
    values.push(session.cache.packedRow(0, "v", p).slice());
  }
  return { keys, values };
}

const rms = (a: Float32Array[], b: Float32Array[]) => {
  let sum = 0;
  let n = 0;
  a.forEach((row, i) => row.forEach((x, j) => ((sum += (x - b[i]![j]!) ** 2), n++)));
  return Math.sqrt(sum / n);
};

interface ShiftCheck {
  /** RMS of layer 0's shifted keys against a fresh evaluation's, and of the fresh ones against f32 keys. */
  keyRms: number;
  formatKeyRms: number;
  /** Whether layer 0's V bytes equal the fresh evaluation's. */
  sameValues: boolean;
  /** Mean KL divergence of the next tokens' distributions, shifted against fresh (the shift's cost, stated). */
  kld: number;
}

function shiftCheck(model: Model, opts: SessionOptions): ShiftCheck {
  const s = model.createSession({ contextSize: 96, ...opts });
  s.eval(TOKENS);
  s.shift(KEEP, DROP);
  assert.equal(s.position, TOKENS.length - DROP);
  const kept = [...TOKENS.slice(0, KEEP), ...TOKENS.slice(KEEP + DROP)];
  assert.deepEqual(s.tokens, kept);
  const fresh = model.createSession({ contextSize: 96, ...opts });
  const exact = model.createSession({ contextSize: 96, kv: { k: "f32", v: "f32" }, rotation: false });
  const nVocab = model.config.nVocab;
  const freshLogits = fresh.evalAll([...kept, ...NEXT]).slice(kept.length * nVocab);
  exact.eval(kept);
  const [a, b, c] = [layer0Rows(s, KEEP, kept.length), layer0Rows(fresh, KEEP, kept.length), layer0Rows(exact, KEEP, kept.length)];
  const shiftedLogits = s.evalAll(NEXT);
  return {
    keyRms: rms(a.keys, b.keys),
    formatKeyRms: rms(b.keys, c.keys.map((k) => k.slice(0, b.keys[0]!.length))),
    sameValues: a.values.every((v, i) => v.length === b.values[i]!.length && v.every((x, j) => x === b.values[i]![j])),
    kld: meanKld(freshLogits, shiftedLogits, nVocab),
  };
}

const PAIRS: [KvFormatName, KvFormatName][] = [
  ["f16", "f16"], ["bf16", "f16"], ["q8_0", "q8_0"], ["q8_0", "q4_0"], ["q4_0", "q4_0"], ["q5_1", "q5_0"], ["iq4_nl", "q4_1"], ["iq3_nl", "iq3_nl"], ["iq2_nl", "q8_0"],
];

for (const [name, md] of [["llama", llama], ["qwen2", qwen]] as const) {
  test(`${name}: shifted keys are a fresh evaluation's keys (f32: to rounding; quantized: within twice the format's error); V moves as is`, (t) => {
    const model = loadModel(md.modelPath, { threads: 1 });
    try {
      const f32 = shiftCheck(model, { kv: { k: "f32", v: "f32" }, rotation: false });
      t.diagnostic(`f32: layer-0 key RMS vs fresh ${f32.keyRms.toExponential(2)}; next-token KLD vs re-evaluating the kept tokens ${f32.kld.toExponential(2)}`);
      assert.ok(f32.keyRms < 1e-6, `f32 key RMS ${f32.keyRms}`);
      assert.ok(f32.sameValues);
      for (const [k, v] of PAIRS) {
        const r = shiftCheck(model, { kv: { k, v } });
        t.diagnostic(`${k}/${v}: layer-0 key RMS vs fresh ${r.keyRms.toExponential(2)} (format's own ${r.formatKeyRms.toExponential(2)}); next-token KLD vs re-evaluating the kept tokens ${r.kld.toExponential(2)}`);
        assert.ok(r.keyRms <= 2 * r.formatKeyRms + 1e-6, `${k}/${v}: key RMS ${r.keyRms} vs the format's ${r.formatKeyRms}`);
        assert.ok(r.sameValues, `${k}/${v}: V rows moved unchanged`);
      }
      const sinks = shiftCheck(model, { kv: { k: "q8_0", v: "q4_0" }, kvSinks: 4 });
      assert.ok(sinks.keyRms <= 2 * sinks.formatKeyRms + 1e-6 && sinks.sameValues);
    } finally {
      model.dispose();
    }
  });
}

test("layouts tied to positions refuse to shift, naming why", () => {
  const model = loadModel(llama.modelPath, { threads: 1 });
  try {
    const refuse = (kv: KvPair, extra: SessionOptions, nKeep: number, pattern: RegExp) => {
      const s = model.createSession({ contextSize: 96, kv, ...extra });
      s.eval(TOKENS);
      assert.equal(s.canShift(nKeep), false);
      assert.throws(() => s.shift(nKeep, DROP), pattern);
      assert.equal(s.position, TOKENS.length, "nothing moved");
    };
    refuse({ k: "q8_0", v: "q4_0" }, { kvWindow: 32 }, KEEP, /exact recent window/);
    refuse({ k: "q4_1", v: "q8_0", kLayout: "channel" }, { kvWindow: 32 }, KEEP, /window|per channel/);
    refuse({ k: "q8_0", v: "q4_0" }, { kvSinks: 16 }, KEEP, /16 exact sinks must stay/);
    const s = model.createSession({ contextSize: 96 });
    s.eval(TOKENS);
    assert.throws(() => s.shift(KEEP, 0), /drop 0/);
    assert.throws(() => s.shift(70, 20), /keep 70 and drop 20 of 80/);
  } finally {
    model.dispose();
  }
});
