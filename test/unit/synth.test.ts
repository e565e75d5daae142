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
import { getFormat, rowBytes } from "../../src/formats/table.js";
import { parseGguf, readTensorData, metaNumber, metaString, metaStringArray } from "../../src/gguf/reader.js";
import { bufferSource, fileSource } from "../../src/gguf/source.js";
import type { ByteSource } from "../../src/gguf/types.js";
import { synthLlama, synthToFile, SYNTH_PRESETS, type SynthOptions, type SynthProgress, type SynthWeightType } from "../../src/gguf/synth.js";
import { SynthThreads } from "../../src/gguf/synth-threads.js";
import { synthVocab } from "../../src/gguf/synth-vocab.js";
import { encodeGguf, planGguf } from "../../src/gguf/writer.js";

const asPlain = (v: unknown): unknown => (ArrayBuffer.isView(v) ? Array.from(v as unknown as ArrayLike<unknown>) : v);

// ---- The oracle: synth's original scalar stream and the reference quantizers, row by row. ----

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** synth.ts's original Rng, verbatim: xoshiro128** seeded through splitmix32, Box-Muller with a spare. */
class OracleRng {
  private s = new Uint32Array(4);
  private spare: number | undefined;
  constructor(seed: number) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }
  uniform(): number {
    return (this.nextU32() + 0.5) / 4294967296;
  }
  normal(): number {
    if (this.spare !== undefined) {
      const v = this.spare;
      this.spare = undefined;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(this.uniform()));
    const theta = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }
}

/** synth.ts's per-tensor seed (tensor index in file order). */
function oracleSeed(seed: number, index: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77)) >>> 0;
}

/** rows × ne0 values mean + std × normal(), each row quantized by the format's reference (TypeScript) kernel. */
function oracleTensor(formatName: string, ne0: number, rows: number, mean: number, std: number, seed: number): Uint8Array {
  const format = getFormat(formatName);
  const bytesPerRow = rowBytes(format, ne0);
  const out = new Uint8Array(rows * bytesPerRow);
  const row = new Float32Array(ne0);
  const rng = new OracleRng(seed);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < ne0; i++) row[i] = mean + std * rng.normal();
    format.reference.quantizeRow(row, out.subarray(r * bytesPerRow, (r + 1) * bytesPerRow));
  }
  return out;
}

/** What synth draws each tensor from: embeddings N(0, 1), norms 1 + 0.02 N, biases 0.5 N, matrices N / sqrt(fan-in). */
function oracleMoments(name: string, ne0: number): { mean: number; std: number } {
  if (name === "token_embd.weight") return { mean: 0, std: 1 };
  if (name.endsWith("norm.weight")) return { mean: 1, std: 0.02 };
  if (name.endsWith(".bias")) return { mean: 0, std: 0.5 };
  return { mean: 0, std: 1 / Math.sqrt(ne0) };
}

/** A small shape every weight type accepts (K-quants: rows of 256). */
const KQ_SHAPE = { dim: 256, ffnDim: 512, nLayers: 1, nHeads: 4, nKvHeads: 2, vocabSize: 600 };
const WEIGHT_TYPES: readonly SynthWeightType[] = ["f32", "f16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K"];

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

test("every weight type: each tensor is the reference quantizer's bytes of the original normal stream (spec and written file)", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "kvsplit-synth-bytes-"));
  try {
    for (const type of WEIGHT_TYPES) {
      const opts: SynthOptions = { preset: KQ_SHAPE, type, seed: 21, architecture: "qwen2" }; // with biases
      const spec = synthLlama(opts);
      const expected = spec.tensors.map((t, i) => {
        const { mean, std } = oracleMoments(t.name, t.shape[0]!);
        const format = t.name.includes("norm") || t.name.endsWith(".bias") ? "f32" : type;
        return oracleTensor(format, t.shape[0]!, t.shape.slice(1).reduce((a, b) => a * b, 1), mean, std, oracleSeed(21, i));
      });
      spec.tensors.forEach((t, i) => assert.deepEqual((t.data as () => Uint8Array)(), expected[i], `${type} ${t.name}`));
      const file = path.join(dir, `${type}.gguf`);
      synthToFile(opts, file, { threads: 3 });
      const src = fileSource(file);
      try {
        const f = parseGguf(src);
        f.tensors.forEach((t, i) => assert.deepEqual(readTensorData(src, t), expected[i], `${type} ${t.name} from the file`));
      } finally {
        src.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("tensors split over threads (several chunks each) keep every byte of the sequential stream, odd rows included", () => {
  const threads = new SynthThreads(3, { parallelMinValues: 0 });
  try {
    // 3 chunks of 2^18 values each (the last one short); f32 with an odd row length: chunks of an even row count.
    const jobs = [
      ...WEIGHT_TYPES.map((format) => ({ format, ne0: 256, rows: 2500, mean: 0, std: 0.05 })),
      { format: "f32", ne0: 385, rows: 1501, mean: 1, std: 0.02 },
    ];
    for (const job of jobs) {
      const got = threads.tensor(job, 77);
      assert.deepEqual(got, oracleTensor(job.format, job.ne0, job.rows, job.mean, job.std, 77), `${job.format} ne0 ${job.ne0}`);
      assert.deepEqual(new SynthThreads(1).tensor(job, 77), got, `${job.format}: one thread`);
    }
  } finally {
    threads.dispose();
  }
});

test("llama-8b: Llama 3 8B's shape in the header (read back by our reader), a planned q4_K file of about 4.1 GB", () => {
  const spec = synthLlama({ preset: "llama-8b", type: "q4_K" });
  const layout = planGguf(spec); // header and offsets only: no tensor data is generated
  assert.ok(layout.fileSize > 4.0e9 && layout.fileSize < 4.2e9, String(layout.fileSize));
  // The reader sees the header as it is in the 4.1 GB file (zero bytes stand in for the tensor data).
  const header: ByteSource = {
    name: "llama-8b-q4_K (header)",
    size: layout.fileSize,
    read(offset, length) {
      const out = new Uint8Array(length);
      if (offset < layout.header.length) out.set(layout.header.subarray(offset, Math.min(layout.header.length, offset + length)));
      return out;
    },
  };
  const f = parseGguf(header);
  assert.equal(metaString(f, "general.architecture"), "llama");
  assert.equal(metaNumber(f, "llama.embedding_length"), 4096);
  assert.equal(metaNumber(f, "llama.block_count"), 32);
  assert.equal(metaNumber(f, "llama.attention.head_count"), 32);
  assert.equal(metaNumber(f, "llama.attention.head_count_kv"), 8);
  assert.equal(metaNumber(f, "llama.feed_forward_length"), 14336);
  assert.equal(metaNumber(f, "llama.vocab_size"), 32000);
  assert.equal(metaNumber(f, "llama.rope.freq_base"), 500000);
  assert.equal(metaNumber(f, "llama.context_length"), 32768);
  assert.equal(metaNumber(f, "llama.rope.dimension_count"), 128);
  assert.equal(metaNumber(f, "general.file_type"), 14); // MOSTLY_Q4_K_S
  assert.equal(metaStringArray(f, "tokenizer.ggml.tokens").length, 32000);
  const shapes = new Map(f.tensors.map((t) => [t.name, t.shape]));
  assert.equal(f.tensors.length, 2 + 32 * 9 + 1);
  assert.deepEqual(shapes.get("token_embd.weight"), [4096, 32000]);
  assert.deepEqual(shapes.get("blk.31.attn_q.weight"), [4096, 4096]);
  assert.deepEqual(shapes.get("blk.31.attn_k.weight"), [4096, 1024]);
  assert.deepEqual(shapes.get("blk.31.attn_v.weight"), [4096, 1024]);
  assert.deepEqual(shapes.get("blk.31.ffn_gate.weight"), [4096, 14336]);
  assert.deepEqual(shapes.get("blk.31.ffn_down.weight"), [14336, 4096]);
  assert.deepEqual(shapes.get("output.weight"), [4096, 32000]); // untied
  assert.equal(f.tensors.find((t) => t.name === "blk.0.attn_q.weight")!.format.name, "q4_K");
  const params = spec.tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
  assert.ok(params > 7.2e9 && params < 7.3e9, String(params)); // Llama 3 8B: 8.03e9, less 2 × 96256 × 4096 for the smaller vocabulary
});

test("synthToFile reports progress, never backwards, ending at 100% of the file and of the tensors", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "kvsplit-synth-progress-"));
  try {
    for (const threads of [1, 2]) {
      const file = path.join(dir, `p${threads}.gguf`);
      const seen: SynthProgress[] = [];
      // token_embd: 256 × 16384 values, enough for several chunks on both threads
      const size = synthToFile({ preset: { ...KQ_SHAPE, vocabSize: 16384 }, type: "q8_0" }, file, { threads, onProgress: (p) => seen.push({ ...p }) });
      assert.ok(seen.length > 3, `${seen.length} calls`);
      for (let i = 1; i < seen.length; i++) {
        assert.ok(seen[i]!.bytesDone >= seen[i - 1]!.bytesDone && seen[i]!.tensorsDone >= seen[i - 1]!.tensorsDone, JSON.stringify(seen.slice(i - 1, i + 1)));
      }
      assert.ok(seen.every((p) => p.bytesTotal === size && p.tensorsTotal === 2 + 9 + 1 && p.bytesDone <= size));
      assert.deepEqual(seen.at(-1), { bytesDone: size, bytesTotal: size, tensorsDone: 12, tensorsTotal: 12 });
      assert.ok(seen.some((p) => p.bytesDone > 0 && p.bytesDone < size / 2), "progress inside the first (largest) tensor");
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
