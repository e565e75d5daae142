/**
 * Hyperparameters of a Llama-family model, read from GGUF metadata (`<arch>.*` keys, as llama.cpp names them).
 *
 * Architectures differ only in data, never in code paths: the rope kind here, and optional tensors (q/k/v biases,
 * rope frequency factors) in the weights. What llama.cpp does with each supported architecture:
 * - `llama` (Llama 1-3.x, Mistral, TinyLlama): adjacent-pair ("normal") rope over the whole head; Llama 3.x adds
 *   `rope_freqs.weight` (per-pair frequency divisors) and a large `rope.freq_base`; optional biases.
 *   `<arch>.attention.sliding_window` is not read for this architecture by llama.cpp (Mistral GGUFs run with full
 *   attention there), so it is ignored here too.
 * - `qwen2` (Qwen2, Qwen2.5): NeoX rope (first half of the rotated dims paired with the second half), q/k/v biases.
 * Rope scaling as llama.cpp reads it: `rope.scaling.type` (default "linear"), `rope.scaling.factor` (or the older
 * `rope.scale_linear`) giving frequency scale 1/factor unless the type is "none", `rope.scaling.attn_factor` scaling
 * cos and sin. YaRN and LongRoPE are rejected.
 */
import type { GgufFile } from "../gguf/types.js";
import { ModelError } from "./errors.js";

export const SUPPORTED_ARCHITECTURES = ["llama", "qwen2"] as const;
export type Architecture = (typeof SUPPORTED_ARCHITECTURES)[number];

/** How rope pairs the values of a head: adjacent (x[2i], x[2i+1]) or halves (x[i], x[i + ropeDim/2]). */
export type RopeKind = "norm" | "neox";

/** What differs between the supported architectures (llama.cpp's llama_model_rope_type). */
const ARCHITECTURE_ROPE: Readonly<Record<Architecture, RopeKind>> = {
  llama: "norm",
  qwen2: "neox",
};

/** rope.scaling.type values kvsplit computes; llama.cpp's other ones (yarn, longrope) are refused by name. */
const SUPPORTED_ROPE_SCALING = ["none", "linear"] as const;

export interface ModelConfig {
  readonly architecture: Architecture;
  /** Width of the residual stream. */
  readonly dim: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  /** nKvHeads × headDim: values per position in each of K and V. */
  readonly kvDim: number;
  /** Hidden width of the SwiGLU feed-forward block. */
  readonly ffnDim: number;
  readonly nVocab: number;
  /** The context length the model was trained with. */
  readonly contextLength: number;
  readonly normEps: number;
  readonly ropeBase: number;
  /** Leading values of each head that are rotated (headDim for llama and qwen2, as llama.cpp requires). */
  readonly ropeDim: number;
  readonly ropeKind: RopeKind;
  /** Multiplies every rope angle: 1 / rope.scaling.factor for linear scaling, else 1. */
  readonly ropeFreqScale: number;
  /** Multiplies cos and sin (rope.scaling.attn_factor, default 1). */
  readonly ropeAttnFactor: number;
}

/** Read the config; every missing or inconsistent value is a ModelError naming the key and the value found. */
export function configFromGguf(file: GgufFile): ModelConfig {
  const archValue = file.metadata.get("general.architecture");
  if (typeof archValue !== "string") {
    throw new ModelError(`metadata key general.architecture is missing or not a string (found ${describe(archValue)})`, file.name);
  }
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(archValue)) {
    throw new ModelError(
      `unsupported architecture '${archValue}'; supported: ${SUPPORTED_ARCHITECTURES.join(", ")}`,
      file.name,
    );
  }
  const architecture = archValue as Architecture;
  const num = (key: string, fallback?: number): number => {
    const full = `${architecture}.${key}`;
    const v = file.metadata.get(full);
    if (v === undefined) {
      if (fallback !== undefined) return fallback;
      throw new ModelError(`metadata key ${full} is missing`, file.name);
    }
    const n = typeof v === "bigint" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isFinite(n)) {
      throw new ModelError(`metadata key ${full} should be a number, found ${describe(v)}`, file.name);
    }
    return n;
  };
  const positiveInt = (key: string, value: number): number => {
    if (!Number.isInteger(value) || value < 1 || value > 1 << 24) {
      throw new ModelError(`${architecture}.${key} should be a positive integer up to ${1 << 24}, found ${value}`, file.name);
    }
    return value;
  };

  const dim = positiveInt("embedding_length", num("embedding_length"));
  const nLayers = positiveInt("block_count", num("block_count"));
  const nHeads = positiveInt("attention.head_count", num("attention.head_count"));
  const nKvHeads = positiveInt("attention.head_count_kv", num("attention.head_count_kv", nHeads));
  const headDim = positiveInt("attention.key_length", num("attention.key_length", dim / nHeads));
  const valueLength = num("attention.value_length", headDim);
  if (valueLength !== headDim) {
    throw new ModelError(`attention.value_length ${valueLength} differs from key_length ${headDim}: not supported`, file.name);
  }
  if (nHeads % nKvHeads !== 0) {
    throw new ModelError(`attention.head_count ${nHeads} is not a multiple of head_count_kv ${nKvHeads}`, file.name);
  }
  const ropeDim = positiveInt("rope.dimension_count", num("rope.dimension_count", headDim));
  if (ropeDim !== headDim || ropeDim % 2 !== 0) {
    // llama.cpp's llama and qwen2 graphs both require the whole head to be rotated, in pairs
    throw new ModelError(`rope.dimension_count ${ropeDim} must equal head_dim ${headDim} and be even: ${architecture} rotates whole heads`, file.name);
  }
  const nExperts = num("expert_count", 0);
  if (nExperts > 0) {
    throw new ModelError(`${architecture}.expert_count is ${nExperts}: mixture-of-experts models are not supported`, file.name);
  }
  const tokens = file.metadata.get("tokenizer.ggml.tokens");
  const embd = file.tensors.find((t) => t.name === "token_embd.weight");
  const nVocab = Array.isArray(tokens) ? tokens.length : embd ? embd.shape[1] : 0;
  if (!nVocab) throw new ModelError("no vocabulary: neither tokenizer.ggml.tokens nor token_embd.weight found", file.name);
  const normEps = num("attention.layer_norm_rms_epsilon", 1e-5);
  const ropeBase = num("rope.freq_base", 10000);
  if (!(normEps > 0) || !(ropeBase > 0)) {
    throw new ModelError(`layer_norm_rms_epsilon (${normEps}) and rope.freq_base (${ropeBase}) must be positive`, file.name);
  }
  const { freqScale: ropeFreqScale, attnFactor: ropeAttnFactor } = ropeScaling(file, architecture, num);
  return {
    architecture,
    dim,
    nLayers,
    nHeads,
    nKvHeads,
    headDim,
    kvDim: nKvHeads * headDim,
    ffnDim: positiveInt("feed_forward_length", num("feed_forward_length")),
    nVocab,
    contextLength: positiveInt("context_length", num("context_length", 2048)),
    normEps,
    ropeBase,
    ropeDim,
    ropeKind: ARCHITECTURE_ROPE[architecture],
    ropeFreqScale,
    ropeAttnFactor,
  };
}

/** llama.cpp's reading of the rope scaling keys (llama_model::load_hparams, llama_context's cparams). */
function ropeScaling(
  file: GgufFile,
  architecture: Architecture,
  num: (key: string, fallback?: number) => number,
): { freqScale: number; attnFactor: number } {
  const typeKey = `${architecture}.rope.scaling.type`;
  const type = file.metadata.get(typeKey) ?? "linear";
  if (typeof type !== "string" || !(SUPPORTED_ROPE_SCALING as readonly string[]).includes(type)) {
    throw new ModelError(
      `${typeKey} '${typeof type === "string" ? type : describe(type)}' is not supported; supported: ${SUPPORTED_ROPE_SCALING.join(", ")}`,
      file.name,
    );
  }
  const factor = num("rope.scaling.factor", num("rope.scale_linear", 0));
  const attnFactor = num("rope.scaling.attn_factor", 1);
  if (!(factor >= 0) || !(attnFactor > 0)) {
    throw new ModelError(`rope.scaling.factor (${factor}) must be ≥ 0 and rope.scaling.attn_factor (${attnFactor}) positive`, file.name);
  }
  // a factor of 0 means "not set"; type "none" never scales
  const freqScale = type === "none" || factor === 0 ? 1 : 1 / factor;
  return { freqScale, attnFactor };
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return `${typeof v} ${String(v).slice(0, 40)}`;
}
