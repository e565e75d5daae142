/**
 * Will a model and a session fit in one WebAssembly memory (4 GiB at most on Node 20, no memory64)?
 * A pure plan from the config: call it before allocating anything, and fail with a sentence that says how much is
 * needed, what is available, and which context would fit.
 *
 *   weights   the bytes loadWeights places (weightBytes(gguf): packed matrices, norms decoded to f32)
 *   kv        contextSize × Σ over layers of K and V row bytes (whole blocks), exactly what KvCache allocates
 *   scratch   an upper estimate of the rest: the session's f32 activations (RunState, per batch token), the RoPE
 *             table (contextSize × ropeDim/2 cos/sin pairs), per-thread attention scratch (scores over the context
 *             for each query head of a kv group, plus a few head-sized rows), the converted matvec inputs, and a
 *             fixed reserve for the kernels' static data, stack and allocator alignment.
 */
import type { KvPair } from "../api.js";
import { getKvFormat } from "../formats/table.js";
import { kvBytesPerToken, type KvLayerFormats } from "../kv/cache.js";
import { MAX_WASM_BYTES } from "../runtime/wasm.js";
import type { ModelConfig } from "./config.js";

/** Kernel static data, stack, layer descriptors and 64-byte alignment of every allocation, rounded up generously. */
export const RESERVED_BYTES = 16 * 1024 * 1024;

export interface MemoryPlan {
  weights: number;
  kv: number;
  scratch: number;
  total: number;
  /** Bytes one WebAssembly memory can hold (MAX_WASM_BYTES unless told otherwise). */
  available: number;
  /** The largest context that fits with these weights and KV formats (0 when not even one token fits). */
  maxContextSize: number;
}

export interface MemoryPlanOptions {
  /** Threads that each get their own attention scratch (default 1). */
  threads?: number;
  /** Tokens evaluated per forward step (prompt batches; default 1). */
  batchTokens?: number;
  /** Default MAX_WASM_BYTES (4 GiB). */
  available?: number;
}

/** Thrown before any large allocation when the model and its session do not fit. */
export class MemoryPlanError extends Error {
  constructor(
    readonly plan: MemoryPlan,
    readonly contextSize: number,
    kvLabel: string,
  ) {
    const fitHint =
      plan.maxContextSize < 1
        ? "the weights alone leave no room: use a smaller model or a smaller weight quantization"
        : `at most ${plan.maxContextSize} tokens of context fit with K/V ${kvLabel}: pass a smaller context (-c) or smaller K/V formats (e.g. --kv K8V4 or K4V4)`;
    super(
      `the model and its session need ${gib(plan.total)} of WebAssembly memory (weights ${gib(plan.weights)}, ` +
        `KV cache ${gib(plan.kv)} for ${contextSize} tokens of K/V ${kvLabel}, scratch ${gib(plan.scratch)}) ` +
        `but one WebAssembly memory holds at most ${gib(plan.available)} in Node; ${fitHint}`,
    );
    this.name = "MemoryPlanError";
  }
}

/**
 * The memory a model with `weightsBytes` of weights needs for a session of `contextSize` tokens with these K/V formats
 * (one pair for every layer, or one per layer).
 */
export function planMemory(
  config: ModelConfig,
  weightsBytes: number,
  contextSize: number,
  kvPairs: KvPair | readonly KvPair[],
  opts: MemoryPlanOptions = {},
): MemoryPlan {
  const layers = kvLayerFormats(config, kvPairs);
  const threads = Math.max(1, opts.threads ?? 1);
  const batch = Math.max(1, opts.batchTokens ?? 1);
  const available = opts.available ?? MAX_WASM_BYTES;

  const kvPerToken = kvBytesPerToken(layers, config.kvDim);
  const { fixed, perToken } = scratchBytes(config, threads, batch);
  const weights = weightsBytes;
  const kv = contextSize * kvPerToken;
  const scratch = fixed + contextSize * perToken;
  const room = available - weights - fixed;
  const maxContextSize = room <= 0 ? 0 : Math.floor(room / (kvPerToken + perToken));
  return { weights, kv, scratch, total: weights + kv + scratch, available, maxContextSize };
}

/** planMemory, throwing MemoryPlanError when the total exceeds what is available. Returns the plan otherwise. */
export function checkMemoryPlan(
  config: ModelConfig,
  weightsBytes: number,
  contextSize: number,
  kvPairs: KvPair | readonly KvPair[],
  opts: MemoryPlanOptions = {},
): MemoryPlan {
  const plan = planMemory(config, weightsBytes, contextSize, kvPairs, opts);
  if (plan.total > plan.available) throw new MemoryPlanError(plan, contextSize, kvLabel(kvPairs));
  return plan;
}

/**
 * Scratch split into a context-independent part and a part per context token (RoPE table row and, per thread,
 * one attention score per query head of a kv group).
 */
function scratchBytes(c: ModelConfig, threads: number, batch: number): { fixed: number; perToken: number } {
  const qDim = c.nHeads * c.headDim;
  const maxCols = Math.max(c.dim, c.ffnDim, qDim);
  // RunState: x, xb, xb2, q, k, v, att, hb, hb2, logits (f32), per batch token
  const activations = 4 * batch * (3 * c.dim + Math.max(c.dim, qDim) + 2 * qDim + 2 * c.kvDim + 2 * c.ffnDim + c.nVocab);
  // Linear: the input converted to each partner format (at most f32-sized, at most 3 distinct partners)
  const converted = 3 * 4 * batch * maxCols;
  // attention per thread: accumulators and decoded rows (≈ 16 head-sized f32 rows per query head of the group)
  const group = Math.ceil(c.nHeads / c.nKvHeads / 4) * 4;
  const attentionFixed = threads * (16 * group * c.headDim * 4 + 4096);
  const fixed = activations + converted + attentionFixed + RESERVED_BYTES;
  const perToken = (c.ropeDim / 2) * 8 + threads * group * 4;
  return { fixed, perToken };
}

function kvLayerFormats(c: ModelConfig, kvPairs: KvPair | readonly KvPair[]): KvLayerFormats[] {
  const pairs = isPairList(kvPairs) ? kvPairs : Array.from({ length: c.nLayers }, () => kvPairs);
  if (pairs.length !== c.nLayers) throw new RangeError(`kv has ${pairs.length} entries but the model has ${c.nLayers} layers`);
  return pairs.map((p) => ({ k: getKvFormat(p.k), v: getKvFormat(p.v) }));
}

function isPairList(kv: KvPair | readonly KvPair[]): kv is readonly KvPair[] {
  return Array.isArray(kv);
}

function kvLabel(kv: KvPair | readonly KvPair[]): string {
  const pairs = isPairList(kv) ? kv : [kv];
  const names = [...new Set(pairs.map((p) => `${p.k}/${p.v}`))];
  return names.length === 1 ? names[0]! : `${names.length} per-layer pairs`;
}

function gib(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}
