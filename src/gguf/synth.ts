/**
 * Synthetic GGUF models (random weights, deterministic for a seed) with the tensor names, shapes and metadata keys
 * llama.cpp's "llama" architecture reads (or "qwen2": the same tensors plus q/k/v biases; or Llama 3.x style: a
 * `rope_freqs.weight` tensor), and a sentencepiece vocabulary llama.cpp accepts.
 * Matrices are stored f32, f16, a 32-value block format (q8_0, q5_1, q5_0, q4_1, q4_0, iq4_nl) or a K-quant (q2_K ..
 * q6_K; rows of a multiple of 256 values), quantized with the
 * format table's WebAssembly kernels (the same bytes as its reference kernels), optionally on several threads
 * (synth-threads.ts; the bytes do not depend on the thread count); norms stay f32.
 */
import { getFormat } from "../formats/table.js";
import { GgufValueType } from "./types.js";
import { planGguf, writeGguf, type GgufLayout, type GgufMetadataSpec, type GgufSpec, type GgufTensorSpec } from "./writer.js";
import { SynthThreads } from "./synth-threads.js";
import { SYNTH_BOS_ID, SYNTH_EOS_ID, SYNTH_UNK_ID, synthVocab } from "./synth-vocab.js";

export interface SynthShape {
  dim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  ffnDim: number;
  vocabSize: number;
  contextLength: number;
  ropeBase: number;
  normEps: number;
  /** No output.weight: llama.cpp then uses token_embd.weight for the output projection. */
  tiedOutput: boolean;
}

export type SynthPresetName = "tiny" | "tinyllama-1.1b" | "llama-8b";
export type SynthWeightType = "f32" | "f16" | "q8_0" | "q5_1" | "q5_0" | "q4_1" | "q4_0" | "iq4_nl" | "q2_K" | "q3_K" | "q4_K" | "q5_K" | "q6_K";

export const SYNTH_PRESETS: Readonly<Record<SynthPresetName, Readonly<SynthShape>>> = {
  // head_dim 64: quantized KV blocks (32) and the Hadamard rotation (64) both apply.
  tiny: {
    dim: 128, nLayers: 2, nHeads: 2, nKvHeads: 1, ffnDim: 384, vocabSize: 512, contextLength: 512,
    ropeBase: 10000, normEps: 1e-5, tiedOutput: false,
  },
  "tinyllama-1.1b": {
    dim: 2048, nLayers: 22, nHeads: 32, nKvHeads: 4, ffnDim: 5632, vocabSize: 32000, contextLength: 2048,
    ropeBase: 10000, normEps: 1e-5, tiedOutput: false,
  },
  // Llama 3 8B's shape (vocabulary 32000, not 128256: the synthetic sentencepiece vocabulary); ~4.1 GB at q4_K.
  "llama-8b": {
    dim: 4096, nLayers: 32, nHeads: 32, nKvHeads: 8, ffnDim: 14336, vocabSize: 32000, contextLength: 32768,
    ropeBase: 500000, normEps: 1e-5, tiedOutput: false,
  },
};

export interface SynthOptions {
  /** A preset, or a custom shape (fields missing from it come from "tiny"). Default "tiny". */
  preset?: SynthPresetName | Partial<SynthShape>;
  /** Storage type of the 2-D matrices (default f32). */
  type?: SynthWeightType;
  /** Default 1. */
  seed?: number;
  /**
   * Replaces the synthetic sentencepiece vocabulary: every `tokenizer.*` entry of the file (e.g. a BPE vocabulary).
   * Its `tokenizer.ggml.tokens` array must hold exactly the shape's vocabSize tokens.
   */
  tokenizer?: GgufMetadataSpec[];
  /** general.name (default "kvsplit-synth-<preset>-<type>"). */
  name?: string;
  /**
   * general.architecture and the prefix of the hyperparameter keys (default "llama"). Any name is written (so that
   * unsupported architectures can be tested); the tensors are always the llama set plus the options below.
   */
  architecture?: string;
  /** Write attn_q.bias, attn_k.bias, attn_v.bias in every layer (default: true for "qwen2", else false). */
  attentionBias?: boolean;
  /** Write Llama 3.x rope frequency factors (`rope_freqs.weight`), computed as Meta's "llama3" rope scaling does. */
  llama3Rope?: Llama3RopeScaling;
  /** Write `<arch>.rope.scaling.type` and `.factor` (llama.cpp reads "none", "linear", "yarn", "longrope"). */
  ropeScaling?: { type: string; factor: number };
}

/** Hugging Face's rope_scaling {rope_type: "llama3", ...} parameters (Llama 3.2 uses 32, 1, 4, 8192). */
export interface Llama3RopeScaling {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalContextLength: number;
}

/**
 * Per-pair frequency divisors of Llama 3's rope scaling, as llama.cpp's converter writes them into rope_freqs.weight:
 * a pair whose wavelength 2π/freq is shorter than originalContextLength/highFreqFactor keeps its frequency (1),
 * one longer than originalContextLength/lowFreqFactor is divided by `factor`, and the ones between are interpolated.
 */
export function llama3RopeFreqFactors(r: Llama3RopeScaling, ropeBase: number, headDim: number): Float32Array {
  const factors = new Float32Array(headDim / 2); // (headDim/2)
  const shortWavelength = r.originalContextLength / r.highFreqFactor;
  const longWavelength = r.originalContextLength / r.lowFreqFactor;
  for (let i = 0; i < factors.length; i++) {
    const freq = Math.fround(1 / Math.pow(ropeBase, (2 * i) / headDim));
    const wavelength = (2 * Math.PI) / freq;
    if (wavelength < shortWavelength) factors[i] = 1;
    else if (wavelength > longWavelength) factors[i] = r.factor;
    else {
      const smooth = (r.originalContextLength / wavelength - r.lowFreqFactor) / (r.highFreqFactor - r.lowFreqFactor);
      factors[i] = 1 / ((1 - smooth) / r.factor + smooth);
    }
  }
  return factors;
}

/**
 * llama.cpp's general.file_type (enum llama_ftype) for each weight type: MOSTLY_Q4_0 2, Q4_1 3, Q8_0 7, Q5_0 8, Q5_1 9,
 * IQ4_NL 25; a file with every matrix in one K-quant is the "_S" (small) variant where llama.cpp has several:
 * MOSTLY_Q2_K 10, Q3_K_S 11, Q4_K_S 14, Q5_K_S 16, Q6_K 18.
 */
const FILE_TYPE: Record<SynthWeightType, number> = {
  f32: 0, f16: 1, q8_0: 7, q5_1: 9, q5_0: 8, q4_1: 3, q4_0: 2, iq4_nl: 25, q2_K: 10, q3_K: 11, q4_K: 14, q5_K: 16, q6_K: 18,
};

/** Every weight type a synthetic model can be written in (the CLI's --type choices). */
export const SYNTH_WEIGHT_TYPES = Object.keys(FILE_TYPE) as readonly SynthWeightType[];

export function synthShape(preset: SynthOptions["preset"] = "tiny"): SynthShape {
  if (typeof preset === "string") {
    const p = SYNTH_PRESETS[preset];
    if (!p) throw new RangeError(`synth: unknown preset '${preset}'; allowed: ${Object.keys(SYNTH_PRESETS).join(", ")}`);
    return { ...p };
  }
  return { ...SYNTH_PRESETS.tiny, ...preset };
}

function checkShape(s: SynthShape, type: SynthWeightType): void {
  const fail = (msg: string): never => {
    throw new RangeError(`synth: ${msg} (shape ${JSON.stringify(s)}, type ${type})`);
  };
  for (const k of ["dim", "nLayers", "nHeads", "nKvHeads", "ffnDim", "vocabSize", "contextLength"] as const) {
    if (!Number.isInteger(s[k]) || s[k] < 1) fail(`${k} must be a positive integer, got ${s[k]}`);
  }
  if (s.dim % s.nHeads !== 0) fail(`dim ${s.dim} is not a multiple of nHeads ${s.nHeads}`);
  if (s.nHeads % s.nKvHeads !== 0) fail(`nHeads ${s.nHeads} is not a multiple of nKvHeads ${s.nKvHeads}`);
  if ((s.dim / s.nHeads) % 2 !== 0) fail(`head_dim ${s.dim / s.nHeads} must be even for RoPE`);
  const block = getFormat(type).blockSize;
  if (s.dim % block !== 0 || s.ffnDim % block !== 0) fail(`dim and ffnDim must be multiples of ${type}'s ${block}-value block`);
  if (!(s.ropeBase > 0) || !(s.normEps > 0)) fail("ropeBase and normEps must be positive");
}

/** A distinct stream per tensor, so lazily produced tensors do not depend on write order. */
function tensorSeed(seed: number, index: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77)) >>> 0;
}

interface WeightPlan {
  name: string;
  /** ne0 first. */
  shape: number[];
  /** Values are mean + std × N(0, 1). */
  mean: number;
  std: number;
  /** Vectors (norms, biases, rope factors) stay f32. */
  isNorm: boolean;
  /** Fixed values instead of random ones. */
  values?: Float32Array;
}

interface TensorExtras {
  attentionBias: boolean;
  ropeFreqFactors: Float32Array | null;
}

function weightPlans(s: SynthShape, extras: TensorExtras): WeightPlan[] {
  const headDim = s.dim / s.nHeads;
  const kvDim = headDim * s.nKvHeads;
  const matrix = (name: string, ne0: number, ne1: number, std = 1 / Math.sqrt(ne0)): WeightPlan =>
    ({ name, shape: [ne0, ne1], mean: 0, std, isNorm: false });
  const norm = (name: string): WeightPlan => ({ name, shape: [s.dim], mean: 1, std: 0.02, isNorm: true });
  // biases large enough to matter (qwen2's key biases are large in real models)
  const bias = (name: string, n: number): WeightPlan => ({ name, shape: [n], mean: 0, std: 0.5, isNorm: true });
  const plans: WeightPlan[] = [matrix("token_embd.weight", s.dim, s.vocabSize, 1)];
  for (let l = 0; l < s.nLayers; l++) {
    const p = `blk.${l}.`;
    plans.push(
      norm(`${p}attn_norm.weight`),
      matrix(`${p}attn_q.weight`, s.dim, s.dim),
      matrix(`${p}attn_k.weight`, s.dim, kvDim),
      matrix(`${p}attn_v.weight`, s.dim, kvDim),
      matrix(`${p}attn_output.weight`, s.dim, s.dim),
      norm(`${p}ffn_norm.weight`),
      matrix(`${p}ffn_gate.weight`, s.dim, s.ffnDim),
      matrix(`${p}ffn_down.weight`, s.ffnDim, s.dim),
      matrix(`${p}ffn_up.weight`, s.dim, s.ffnDim),
    );
  }
  plans.push(norm("output_norm.weight"));
  if (!s.tiedOutput) plans.push(matrix("output.weight", s.dim, s.vocabSize));
  // Optional tensors go last, so a model with them has the same random weights as the one without (seeds follow order).
  if (extras.attentionBias) {
    for (let l = 0; l < s.nLayers; l++) {
      const p = `blk.${l}.`;
      plans.push(bias(`${p}attn_q.bias`, s.dim), bias(`${p}attn_k.bias`, kvDim), bias(`${p}attn_v.bias`, kvDim));
    }
  }
  if (extras.ropeFreqFactors) {
    const f = extras.ropeFreqFactors;
    plans.push({ name: "rope_freqs.weight", shape: [f.length], mean: 0, std: 0, isNorm: true, values: f });
  }
  return plans;
}

/**
 * The tensor's bytes: rows of ne0 random values (one normal stream per tensor, synth-rows.ts), each row quantized
 * with the format's WebAssembly kernel (the same bytes as its reference kernel), on `threads`.
 */
function makeTensorData(plan: WeightPlan, typeName: SynthWeightType, seed: number, threads: SynthThreads, onRows?: (rowsDone: number) => void): Uint8Array {
  if (plan.values) return new Uint8Array(Float32Array.from(plan.values).buffer);
  const rows = plan.shape.slice(1).reduce((a, b) => a * b, 1);
  return threads.tensor({ format: typeName, ne0: plan.shape[0]!, rows, mean: plan.mean, std: plan.std }, seed, onRows);
}

function metadataFor(
  s: SynthShape,
  type: SynthWeightType,
  name: string,
  arch: string,
  tokenizer?: GgufMetadataSpec[],
  ropeScaling?: SynthOptions["ropeScaling"],
): GgufMetadataSpec[] {
  const { UINT32, FLOAT32, STRING, BOOL, ARRAY, INT32 } = GgufValueType;
  const m: GgufMetadataSpec[] = [
    { key: "general.architecture", type: STRING, value: arch },
    { key: "general.name", type: STRING, value: name },
    { key: "general.file_type", type: UINT32, value: FILE_TYPE[type] },
  ];
  if (getFormat(type).blockSize > 1) m.push({ key: "general.quantization_version", type: UINT32, value: 2 });
  m.push(
    { key: `${arch}.vocab_size`, type: UINT32, value: s.vocabSize },
    { key: `${arch}.context_length`, type: UINT32, value: s.contextLength },
    { key: `${arch}.embedding_length`, type: UINT32, value: s.dim },
    { key: `${arch}.block_count`, type: UINT32, value: s.nLayers },
    { key: `${arch}.feed_forward_length`, type: UINT32, value: s.ffnDim },
    { key: `${arch}.attention.head_count`, type: UINT32, value: s.nHeads },
    { key: `${arch}.attention.head_count_kv`, type: UINT32, value: s.nKvHeads },
    { key: `${arch}.attention.layer_norm_rms_epsilon`, type: FLOAT32, value: s.normEps },
    { key: `${arch}.rope.dimension_count`, type: UINT32, value: s.dim / s.nHeads },
    { key: `${arch}.rope.freq_base`, type: FLOAT32, value: s.ropeBase },
  );
  if (ropeScaling) {
    m.push(
      { key: `${arch}.rope.scaling.type`, type: STRING, value: ropeScaling.type },
      { key: `${arch}.rope.scaling.factor`, type: FLOAT32, value: ropeScaling.factor },
    );
  }
  if (tokenizer) {
    const tokens = tokenizer.find((e) => e.key === "tokenizer.ggml.tokens")?.value as ArrayLike<unknown> | undefined;
    if (!tokens || tokens.length !== s.vocabSize) {
      throw new RangeError(`synth: the tokenizer block must have tokenizer.ggml.tokens with vocabSize ${s.vocabSize} tokens, found ${tokens ? tokens.length : "none"}`);
    }
    m.push(...tokenizer);
    return m;
  }
  const vocab = synthVocab(s.vocabSize);
  m.push(
    { key: "tokenizer.ggml.model", type: STRING, value: "llama" },
    { key: "tokenizer.ggml.tokens", type: ARRAY, itemType: STRING, value: vocab.tokens },
    { key: "tokenizer.ggml.scores", type: ARRAY, itemType: FLOAT32, value: vocab.scores },
    { key: "tokenizer.ggml.token_type", type: ARRAY, itemType: INT32, value: vocab.tokenTypes },
    { key: "tokenizer.ggml.unknown_token_id", type: UINT32, value: SYNTH_UNK_ID },
    { key: "tokenizer.ggml.bos_token_id", type: UINT32, value: SYNTH_BOS_ID },
    { key: "tokenizer.ggml.eos_token_id", type: UINT32, value: SYNTH_EOS_ID },
    { key: "tokenizer.ggml.add_bos_token", type: BOOL, value: true },
    { key: "tokenizer.ggml.add_eos_token", type: BOOL, value: false },
  );
  return m;
}

/** A GGUF spec whose tensor data is produced lazily, tensor by tensor, when written (on the calling thread). */
export function synthLlama(opts: SynthOptions = {}): GgufSpec {
  serialThreads ??= new SynthThreads(1);
  return buildSpec(opts, serialThreads);
}

/** The one-thread generator of synthLlama's lazy tensors (its WebAssembly memory is reused). */
let serialThreads: SynthThreads | undefined;

/**
 * The spec; tensor i's data comes from `threads` and reports `onRows(i, rowsDone)`.
 */
function buildSpec(opts: SynthOptions, threads: SynthThreads, onRows?: (tensor: number, rowsDone: number) => void): GgufSpec {
  const type = opts.type ?? "f32";
  const seed = opts.seed ?? 1;
  if (!(type in FILE_TYPE)) throw new RangeError(`synth: unknown type '${type}'; allowed: ${SYNTH_WEIGHT_TYPES.join(", ")}`);
  const shape = synthShape(opts.preset);
  checkShape(shape, type);
  const label = typeof opts.preset === "string" ? opts.preset : opts.preset ? "custom" : "tiny";
  const arch = opts.architecture ?? "llama";
  const extras: TensorExtras = {
    attentionBias: opts.attentionBias ?? arch === "qwen2",
    ropeFreqFactors: opts.llama3Rope ? llama3RopeFreqFactors(opts.llama3Rope, shape.ropeBase, shape.dim / shape.nHeads) : null,
  };
  const tensors: GgufTensorSpec[] = weightPlans(shape, extras).map((plan, index) => {
    const storedAs: SynthWeightType = plan.isNorm ? "f32" : type;
    return {
      name: plan.name,
      shape: plan.shape,
      ggmlType: getFormat(storedAs).ggmlType,
      data: () => makeTensorData(plan, storedAs, tensorSeed(seed, index), threads, onRows && ((rowsDone) => onRows(index, rowsDone))),
    };
  });
  return { metadata: metadataFor(shape, type, opts.name ?? `kvsplit-synth-${label}-${type}`, arch, opts.tokenizer, opts.ropeScaling), tensors };
}

/** Where a synthToFile write stands: file bytes (header and tensor data) and whole tensors done. */
export interface SynthProgress {
  bytesDone: number;
  bytesTotal: number;
  tensorsDone: number;
  tensorsTotal: number;
}

export interface SynthWriteOptions {
  /** Threads generating and quantizing rows: the calling thread + (threads − 1) workers (default 1). */
  threads?: number;
  /**
   * Called as tensor data is produced (several times per large tensor), never with less than before, and last with
   * bytesDone = bytesTotal once the file is in place.
   */
  onProgress?: (p: SynthProgress) => void;
}

/** Write a synthetic model to `path` (atomically); returns the file size. The bytes do not depend on `threads`. */
export function synthToFile(opts: SynthOptions, path: string, write: SynthWriteOptions = {}): number {
  // writeGguf writes each tensor before it asks for the next: one output buffer serves them all.
  const threads = new SynthThreads(write.threads ?? 1, { reuseOutput: true });
  try {
    const onProgress = write.onProgress;
    if (!onProgress) return writeGguf(path, buildSpec(opts, threads));
    let layout: GgufLayout | undefined;
    let bytesPerRow: number[] = [];
    let last = 0;
    const onRows = (tensor: number, rowsDone: number): void => {
      const bytesDone = layout!.tensorOffsets[tensor]! + rowsDone * bytesPerRow[tensor]!;
      const tensorsDone = bytesDone === layout!.tensorOffsets[tensor]! + layout!.byteSizes[tensor]! ? tensor + 1 : tensor;
      if (bytesDone < last) return;
      last = bytesDone;
      onProgress({ bytesDone, bytesTotal: layout!.fileSize, tensorsDone, tensorsTotal: layout!.byteSizes.length });
    };
    const spec = buildSpec(opts, threads, onRows);
    layout = planGguf(spec);
    bytesPerRow = spec.tensors.map((t, i) => layout!.byteSizes[i]! / t.shape.slice(1).reduce((a, b) => a * b, 1));
    onProgress({ bytesDone: layout.dataOffset, bytesTotal: layout.fileSize, tensorsDone: 0, tensorsTotal: spec.tensors.length });
    const size = writeGguf(path, spec);
    onProgress({ bytesDone: size, bytesTotal: size, tensorsDone: spec.tensors.length, tensorsTotal: spec.tensors.length });
    return size;
  } finally {
    threads.dispose();
  }
}
