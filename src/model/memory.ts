/**
 * Will a model and a session fit in this machine's memory? A pure plan from the config: call it before allocating
 * anything (before reading the weights), and fail with a sentence that says how much is needed, what is available,
 * and which context would fit.
 *
 * Memory is several WebAssembly memories ("shards", at most 4 GiB each: src/runtime/shards.ts), so the limit is the
 * machine's memory, not 4 GiB; what must still fit in ONE shard is one layer's weights (or the embedding and output)
 * beside the shard's scratch, and one layer's KV cache beside a session's per-shard scratch.
 *
 *   weights   the bytes loadWeights places (weightBytes(gguf): packed matrices, norms decoded to f32)
 *   kv        contextSize × Σ over layers of K and V row bytes (whole blocks), exactly what KvCache allocates
 *   scratch   an upper estimate of the rest: per weight shard, the model's f32 activations (RunState, per batch
 *             token), the converted matmul inputs, the rope rows and a fixed reserve for the kernels' static data;
 *             per KV shard, per-thread attention scratch (scores over the context for each query head of a kv
 *             group and each token of a tile, plus a few head-sized rows), the staging rows of a layer whose
 *             weights are elsewhere and the same reserve.
 */
import type { KvPair } from "../api.js";
import type { ExactFormatName } from "../formats/types.js";
import { getKvFormat } from "../formats/table.js";
import { ATTEND_TOKEN_TILE, kvBytesPerToken, kvRowBytes, kvExactBytesOf, layerExactRows, type KvLayerFormats } from "../kv/cache.js";
import { MAX_WASM_BYTES } from "../runtime/wasm.js";
import type { ModelConfig } from "./config.js";
import { PlacementError, placeWeights } from "./placement.js";

/** Kernel static data, stack, layer descriptors and 64-byte alignment of every allocation, rounded up generously. */
export const RESERVED_BYTES = 16 * 1024 * 1024;
/** The same for a session's part of the KV cache in one memory (descriptors and alignment; static data counted above). */
export const KV_RESERVED_BYTES = 1024 * 1024;

export interface MemoryPlan {
  weights: number;
  kv: number;
  scratch: number;
  total: number;
  /** Bytes the machine offers (os.totalmem() unless told otherwise). */
  available: number;
  /** WebAssembly memories the weights and this session's KV cache are estimated to take. */
  shards: number;
  /** The largest context that fits with these weights and KV formats (0 when not even one token fits). */
  maxContextSize: number;
  /** Why nothing fits although memory would: a layer or its KV cache does not fit in one shard (else undefined). */
  shardLimit?: string;
}

export interface MemoryPlanOptions {
  /** Threads that each get their own attention scratch (default 1). */
  threads?: number;
  /** Tokens evaluated per forward step (prompt batches; default 1). */
  batchTokens?: number;
  /** Bytes of memory available (default: the whole machine's, os.totalmem()). */
  available?: number;
  /** Bytes one WebAssembly memory may hold (default 4 GiB). */
  shardBytes?: number;
  /** The exact recent window (SessionOptions.kvWindow; a layer's KvPair.window overrides it): its f16 rows count as KV cache, its stage as scratch. */
  window?: number;
  /** Exact sinks (SessionOptions.kvSinks; a layer's KvPair.sinks overrides them): their f16 rows count as KV cache. */
  sinks?: number;
  /** The windows' and sinks' row format (SessionOptions.kvExactFormat; default f16). */
  exactFormat?: ExactFormatName;
}

/** Thrown before any large allocation when the model and its session do not fit. */
export class MemoryPlanError extends Error {
  constructor(
    readonly plan: MemoryPlan,
    readonly contextSize: number,
    kvLabel: string,
  ) {
    const fitHint =
      plan.shardLimit !== undefined
        ? plan.shardLimit
        : plan.maxContextSize < 1
          ? "the weights alone leave no room: use a smaller model or a smaller weight quantization"
          : `at most ${plan.maxContextSize} tokens of context fit with K/V ${kvLabel}: pass a smaller context (-c) or smaller K/V formats (e.g. --kv K8V4 or K4V4)`;
    super(
      `the model and its session need ${gib(plan.total)} of memory (weights ${gib(plan.weights)}, ` +
        `KV cache ${gib(plan.kv)} for ${contextSize} tokens of K/V ${kvLabel}, scratch ${gib(plan.scratch)}) ` +
        `but ${gib(plan.available)} is available (this machine's memory); ${fitHint}`,
    );
    this.name = "MemoryPlanError";
  }
}

/** The machine's memory, the default budget: os.totalmem() in Node; one memory (4 GiB) where it cannot be read. */
export function machineMemoryBytes(): number {
  type Os = { totalmem(): number };
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const os = proc?.getBuiltinModule?.("node:os") as Os | undefined;
  return os ? os.totalmem() : MAX_WASM_BYTES;
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
  const available = opts.available ?? machineMemoryBytes();
  const shardBytes = opts.shardBytes ?? MAX_WASM_BYTES;

  const shardScratch = shardScratchBytes(config, threads, batch);
  // layers spread evenly for the plan (the embedding and output counted with them)
  let weightShards: number;
  let shardLimit: string | undefined;
  try {
    weightShards = placeWeights(0, new Array<number>(config.nLayers).fill(weightsBytes / config.nLayers), shardBytes, shardScratch).shardWeights.length;
  } catch (e) {
    if (!(e instanceof PlacementError)) throw e;
    weightShards = 1;
    shardLimit = `${e.message}: the model cannot be loaded at all`;
  }
  const kvPerToken = kvBytesPerToken(layers, config.kvDim);
  const largestLayerKv = Math.max(...layers.map((l) => kvRowBytes(l.k, config.kvDim) + kvRowBytes(l.v, config.kvDim)));
  // the KV cache goes first into the room the weight shards have left, then into memories of its own
  const leftover = weightShards * (shardBytes - shardScratch) - weightsBytes;
  const total = (ctx: number) => {
    const { fixed, perToken } = kvShardScratchBytes(config, threads, batch);
    const w = Math.max(0, ...layerExactRows(layers, opts, ctx).map((e) => e.window));
    const kv = ctx * kvPerToken + kvExactBytesOf(layers, opts, ctx, config.kvDim);
    const room = shardBytes - fixed - ctx * perToken; // KV bytes one shard holds beside the session's scratch
    const beyond = kv + fixed + ctx * perToken - leftover;
    const kvShards = beyond <= 0 ? 0 : room > 0 ? Math.ceil(beyond / room) : 1;
    const stage = w > 0 ? 2 * (w + batch) * config.kvDim * 2 : 0; // K and V of one layer's window and batch, counted as f16 (q8_0 rows take less)
    const scratch = weightShards * shardScratch + Math.max(1, kvShards) * (fixed + ctx * perToken + stage);
    return { kv, scratch, shards: weightShards + kvShards, total: weightsBytes + kv + scratch };
  };
  const fitsShard = (ctx: number) => {
    const { fixed, perToken } = kvShardScratchBytes(config, threads, batch);
    return ctx * (largestLayerKv + perToken) + fixed <= shardBytes;
  };
  const fits = (ctx: number) => fitsShard(ctx) && total(ctx).total <= available;
  // the largest context that fits: total(ctx) grows with ctx, so bisect
  let lo = 0;
  let hi = 1;
  if (shardLimit === undefined) {
    while (fits(hi) && hi < 2 ** 31) hi *= 2;
    if (fits(hi)) lo = hi;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (fits(mid)) lo = mid;
      else hi = mid;
    }
  }
  const t = total(contextSize);
  if (shardLimit === undefined && !fitsShard(contextSize)) {
    shardLimit = `one layer's KV cache at ${contextSize} tokens does not fit in one WebAssembly memory (${gib(shardBytes)}): at most ${lo} tokens of context fit`;
  }
  return { weights: weightsBytes, kv: t.kv, scratch: t.scratch, total: t.total, available, shards: t.shards, maxContextSize: lo, shardLimit };
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
  if (plan.total > plan.available || plan.shardLimit !== undefined) throw new MemoryPlanError(plan, contextSize, kvLabel(kvPairs));
  return plan;
}

/**
 * Scratch each weight shard keeps for the model (allocated at load): the activations of a batch (RunState), the
 * input converted to each matmul partner format, the wide matmuls' per-thread widened rows, the rope rows, and a
 * reserve.
 */
export function shardScratchBytes(c: ModelConfig, threads: number, batch: number): number {
  const qDim = c.nHeads * c.headDim;
  const maxCols = Math.max(c.dim, c.ffnDim, qDim);
  // RunState: x, xb, xb2, q, k, v, att, hb, hb2, logits (f32), per batch token
  const activations = 4 * batch * (3 * c.dim + Math.max(c.dim, qDim) + 2 * qDim + 2 * c.kvDim + 2 * c.ffnDim + c.nVocab);
  // Linear: the input converted to each partner format, its wide q8_0 / q8_K forms and q8_0 tiles' split form (at most
  // 16 bytes a value in all: e.g. q8_0 1.06 + split 2.13 + wide q8_0 2.13 + q8_K 1.14 + wide q8_K 1.14 + f16 2), and
  // per thread two widened weight rows (at most 560 bytes per 256 values each) and a q8_0 tile's four rows
  const converted = 4 * 4 * batch * maxCols + threads * (2 * Math.ceil((maxCols / 256) * 560 + 64) + 4 * (maxCols / 32) * 34);
  const rope = batch * (c.ropeDim / 2) * 8;
  return activations + converted + rope + RESERVED_BYTES;
}

/**
 * A session's scratch in each shard holding some of its KV cache: a fixed part (staging rows of q, k, v and the
 * attention output for layers whose weights are in another shard, per-thread rows, a reserve) and a part per
 * context token (per thread, one attention score per query head of a kv group).
 */
function kvShardScratchBytes(c: ModelConfig, threads: number, batch: number): { fixed: number; perToken: number } {
  const qDim = c.nHeads * c.headDim;
  const staging = 4 * batch * (2 * qDim + 2 * c.kvDim);
  const group = Math.ceil(c.nHeads / c.nKvHeads / 4) * 4;
  // per token slot of a tile: accumulators, prepared queries and their scales; then the rows decoded once
  const attentionFixed = threads * ((16 + 4 * ATTEND_TOKEN_TILE) * group * c.headDim * 4 + 4096);
  return { fixed: staging + attentionFixed + KV_RESERVED_BYTES, perToken: threads * ATTEND_TOKEN_TILE * group * 4 };
}

/** The formats of every layer: the one pair repeated, or the per-layer pairs (one per layer). */
export function kvLayerFormats(c: Pick<ModelConfig, "nLayers">, kvPairs: KvPair | readonly KvPair[]): KvLayerFormats[] {
  const pairs = isPairList(kvPairs) ? kvPairs : Array.from({ length: c.nLayers }, () => kvPairs);
  if (pairs.length !== c.nLayers) throw new RangeError(`kv has ${pairs.length} entries but the model has ${c.nLayers} layers`);
  return pairs.map((p) => ({ ...p, k: getKvFormat(p.k), v: getKvFormat(p.v) }));
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
