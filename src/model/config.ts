/**
 * Hyperparameters of a Llama-family model, read from GGUF metadata (`<arch>.*` keys, as llama.cpp names them).
 */
import type { GgufFile } from "../gguf/types.js";
import { ModelError } from "./errors.js";

export const SUPPORTED_ARCHITECTURES = ["llama"] as const;
export type Architecture = (typeof SUPPORTED_ARCHITECTURES)[number];

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
  /** Leading values of each head that are rotated (usually headDim). */
  readonly ropeDim: number;
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
  if (ropeDim > headDim || ropeDim % 2 !== 0) {
    throw new ModelError(`rope.dimension_count ${ropeDim} must be even and at most head_dim ${headDim}`, file.name);
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
  };
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return `${typeof v} ${String(v).slice(0, 40)}`;
}
