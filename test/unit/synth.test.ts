/**
 * Synthetic Llama models: llama.cpp (node-llama-cpp) loads, tokenizes with and evaluates a tiny model of each weight
 * type; our reader reads back every metadata value and tensor the spec holds; seeds are deterministic; q8_0/f16 weights
 * are the f32 weights quantized; preset shapes are those of llama.cpp's llama architecture.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { getFormat } from "../../src/formats/table.js";
import { parseGguf, readTensorData, metaNumber, metaStringArray } from "../../src/gguf/reader.js";
import { bufferSource } from "../../src/gguf/source.js";
import { synthLlama, synthToFile, SYNTH_PRESETS, type SynthWeightType } from "../../src/gguf/synth.js";
import { synthVocab } from "../../src/gguf/synth-vocab.js";
import { encodeGguf, planGguf } from "../../src/gguf/writer.js";

const asPlain = (v: unknown): unknown => (ArrayBuffer.isView(v) ? Array.from(v as unknown as ArrayLike<unknown>) : v);

function dequantized(bytes: Uint8Array, formatName: string, n: number): Float32Array {
  const out = new Float32Array(n); // (n)
  getFormat(formatName).reference.dequantizeRow(bytes, out);
  return out;
}

test("the reader reads back every metadata value and tensor of a synthetic model", () => {
  const spec = synthLlama({ preset: "tiny", type: "q8_0", seed: 3 });
  const bytes = encodeGguf(spec);
  const src = bufferSource(bytes, "tiny-q8_0");
  const f = parseGguf(src);
  assert.equal(f.metadata.size, spec.metadata.length);
  for (const m of spec.metadata) {
    const entry = f.metadataEntries.get(m.key)!;
    assert.equal(entry.type, m.type, m.key);
    assert.equal(entry.itemType, m.itemType, m.key);
    const want = m.type === 6 ? Math.fround(m.value as number) : m.value;
    assert.deepEqual(asPlain(f.metadata.get(m.key)), asPlain(want), m.key);
  }
  assert.equal(f.tensors.length, 2 + 2 * 9 + 1);
  spec.tensors.forEach((t, i) => {
    const got = f.tensors[i]!;
    assert.equal(got.name, t.name);
    assert.deepEqual(got.shape, t.shape);
    assert.equal(got.format.name, t.name.includes("norm") ? "f32" : "q8_0");
    assert.deepEqual(readTensorData(src, got), (t.data as () => Uint8Array)());
  });
  assert.equal(metaNumber(f, "llama.rope.dimension_count"), 64);
  assert.equal(metaStringArray(f, "tokenizer.ggml.tokens").length, 512);
});

test("same seed gives identical files, another seed other weights; norms near 1, matrices scaled by 1/sqrt(fan-in)", () => {
  const a = encodeGguf(synthLlama({ seed: 11 }));
  assert.deepEqual(encodeGguf(synthLlama({ seed: 11 })), a);
  const b = encodeGguf(synthLlama({ seed: 12 }));
  assert.equal(b.length, a.length);
  assert.notDeepEqual(b, a);
  const src = bufferSource(a);
  const f = parseGguf(src);
  const floats = (name: string) => {
    const t = f.tensors.find((x) => x.name === name)!;
    return new Float32Array(readTensorData(src, t).slice().buffer);
  };
  const stats = (v: Float32Array) => {
    const mean = v.reduce((s, x) => s + x, 0) / v.length;
    return { mean, std: Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length) };
  };
  const norm = stats(floats("blk.1.ffn_norm.weight"));
  assert.ok(Math.abs(norm.mean - 1) < 0.01 && norm.std < 0.05, JSON.stringify(norm));
  const q = stats(floats("blk.0.attn_q.weight"));
  assert.ok(Math.abs(q.std - 1 / Math.sqrt(128)) < 0.005 && Math.abs(q.mean) < 0.005, JSON.stringify(q));
  const down = stats(floats("blk.0.ffn_down.weight"));
  assert.ok(Math.abs(down.std - 1 / Math.sqrt(384)) < 0.003, JSON.stringify(down));
});

test("f16 and q8_0 weights are the f32 weights of the same seed, quantized", () => {
  const byType = (type: SynthWeightType) => {
    const bytes = encodeGguf(synthLlama({ preset: { nLayers: 1 }, type, seed: 5 }));
    return { src: bufferSource(bytes), f: parseGguf(bufferSource(bytes)) };
  };
  const f32 = byType("f32");
  for (const [type, bound] of [["f16", 1e-3], ["q8_0", 0.02]] as const) {
    const other = byType(type);
    for (const t of f32.f.tensors) {
      const ref = new Float32Array(readTensorData(f32.src, t).slice().buffer);
      const o = other.f.tensors.find((x) => x.name === t.name)!;
      const got = dequantized(readTensorData(other.src, o), o.format.name, ref.length);
      let maxRel = 0;
      const maxAbs = ref.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      for (let i = 0; i < ref.length; i++) maxRel = Math.max(maxRel, Math.abs(got[i]! - ref[i]!) / maxAbs);
      assert.ok(maxRel < bound, `${type} ${t.name}: max error ${maxRel} of the largest value`);
    }
  }
});

test("presets: tinyllama-1.1b has llama.cpp's tensor shapes and 1.1B parameters; tied output drops output.weight", () => {
  const spec = synthLlama({ preset: "tinyllama-1.1b", type: "q8_0" });
  const p = SYNTH_PRESETS["tinyllama-1.1b"];
  const shapes = new Map(spec.tensors.map((t) => [t.name, t.shape]));
  assert.equal(spec.tensors.length, 2 + 22 * 9 + 1);
  assert.deepEqual(shapes.get("token_embd.weight"), [2048, 32000]);
  assert.deepEqual(shapes.get("blk.21.attn_q.weight"), [2048, 2048]);
  assert.deepEqual(shapes.get("blk.21.attn_k.weight"), [2048, 256]);
  assert.deepEqual(shapes.get("blk.21.attn_v.weight"), [2048, 256]);
  assert.deepEqual(shapes.get("blk.21.attn_output.weight"), [2048, 2048]);
  assert.deepEqual(shapes.get("blk.21.ffn_gate.weight"), [2048, 5632]);
  assert.deepEqual(shapes.get("blk.21.ffn_up.weight"), [2048, 5632]);
  assert.deepEqual(shapes.get("blk.21.ffn_down.weight"), [5632, 2048]);
  assert.deepEqual(shapes.get("output.weight"), [2048, 32000]);
  const params = spec.tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
  assert.ok(params > 1.09e9 && params < 1.11e9, String(params));
  const layout = planGguf(spec); // no tensor data generated
  assert.ok(layout.fileSize > 1.1e9 && layout.fileSize < 1.25e9, String(layout.fileSize));
  const meta = new Map(spec.metadata.map((m) => [m.key, m.value]));
  assert.equal(meta.get("llama.attention.head_count_kv"), p.nKvHeads);
  assert.equal((meta.get("tokenizer.ggml.tokens") as string[]).length, 32000);
  assert.equal(new Set(meta.get("tokenizer.ggml.tokens") as string[]).size, 32000);
  const tied = synthLlama({ preset: { tiedOutput: true, nLayers: 1 } });
  assert.equal(tied.tensors.some((t) => t.name === "output.weight"), false);
  assert.throws(() => synthLlama({ preset: { dim: 100, nHeads: 2 }, type: "q8_0" }), /multiples of q8_0's 32-value block/);
  assert.throws(() => synthLlama({ preset: { nHeads: 3 } }), /nHeads 3/);
});

test("llama.cpp loads a tiny synthetic model of each type, tokenizes a sentence and evaluates tokens", async () => {
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never", maxThreads: 2, logLevel: LlamaLogLevel.error });
  const dir = mkdtempSync(path.join(tmpdir(), "kvsplit-synth-"));
  const sentence = "Once upon a time, the little girl saw a big tree.";
  const vocab = synthVocab(512).tokens;
  try {
    for (const type of ["f32", "f16", "q8_0"] as const) {
      const file = path.join(dir, `tiny-${type}.gguf`);
      synthToFile({ preset: "tiny", type, seed: 7 }, file);
      const model = await llama.loadModel({ modelPath: file });
      try {
        assert.equal(model.tokens.bos, 1);
        assert.equal(model.tokens.eos, 2);
        assert.equal(model.tokens.shouldPrependBosToken, true);
        const tokens = model.tokenize(sentence);
        assert.equal(model.detokenize(tokens), sentence);
        // Merges happened: fewer tokens than characters, and words from the vocabulary are single tokens.
        assert.ok(tokens.length < sentence.length / 2, `${type}: ${tokens.length} tokens`);
        assert.deepEqual(model.tokenize("the little girl"), ["▁the", "▁little", "▁girl"].map((p) => vocab.indexOf(p)));
        const context = await model.createContext({ contextSize: 64 });
        try {
          const seq = context.getSequence();
          const out: number[] = [];
          for await (const t of seq.evaluate([model.tokens.bos!, ...tokens], { yieldEogToken: true })) {
            out.push(t);
            if (out.length === 4) break;
          }
          assert.equal(out.length, 4);
          for (const t of out) assert.ok(Number.isInteger(t) && t >= 0 && t < 512, `${type}: token ${t}`);
        } finally {
          await context.dispose();
        }
      } finally {
        await model.dispose();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
