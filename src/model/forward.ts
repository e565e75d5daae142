/**
 * The Llama forward pass, as llama.cpp computes it, for a batch of consecutive tokens (one token when decoding).
 * It reads the weights, writes the session's scratch and its KV cache; it never allocates and never knows how the
 * cache stores K and V. Every step works on all the batch's tokens at once: matrices as matrix-matrix products
 * (each weight row read once per batch), attention causal within the batch.
 * Architectures (llama, qwen2) differ only in data: the rope kind in the config, optional biases in the weights.
 * Layers may live in different WebAssembly memories (shards): the residual stream x moves to the next layer's shard
 * when it changes, and back to shard 0 for the output.
 */
import type { ShardedKvCache } from "../kv/sharded.js";
import type { KernelExports, WasmRuntime } from "../runtime/wasm.js";
import type { ModelConfig, RopeKind } from "./config.js";
import type { Linear } from "./linear.js";
import type { RopeRows } from "./rope.js";
import type { RunState } from "./state.js";
import type { LlamaWeights, WeightVector } from "./weights.js";

/** The rows kernel of each rope pairing (both read the same cos/sin table). */
const ROPE_ROWS_KERNEL: Readonly<Record<RopeKind, string>> = { norm: "rope_norm_rows_f32", neox: "rope_neox_rows_f32" };

/** What the forward pass works with in one weight shard (a WebAssembly memory holding some layers' weights). */
export interface ShardScratch {
  readonly rt: WasmRuntime;
  readonly k: KernelExports;
  readonly linear: Linear;
  readonly rope: RopeRows;
  readonly state: RunState;
}

export interface ForwardContext {
  readonly config: ModelConfig;
  readonly weights: LlamaWeights;
  /** Indexed by shard: the scratch of each shard holding weights (shard 0: embedding, output and the first layers). */
  readonly shards: readonly ShardScratch[];
  readonly cache: ShardedKvCache;
}

/** Which tokens of the batch need next-token logits (in state.logits, one row per such token, in order). */
export type LogitsWanted = "none" | "last" | "all";

/**
 * Run `tokens` (at most state.maxTokens) at positions pos0, pos0+1, ...; afterwards state.logits holds
 * (1 or tokens.length, nVocab) logits as `wanted` says.
 */
export function forward(ctx: ForwardContext, tokens: readonly number[], pos0: number, wanted: LogitsWanted): void {
  const { config: c, weights: w, cache } = ctx;
  const n = tokens.length;
  const qDim = c.nHeads * c.headDim;
  const first = ctx.shards[0];
  for (let t = 0; t < n; t++) {
    const e = w.tokenEmbd; // x[t] = E[token t], decoded from its block format
    first.k[e.format.kernels.dequantizeRow](e.ptr + tokens[t] * e.rowBytes, first.state.x + t * c.dim * 4, c.dim);
  }
  for (const shard of ctx.shards) shard.rope.fill(pos0, n); // cos/sin of positions pos0 .. pos0 + n − 1

  let here = first;
  for (let l = 0; l < c.nLayers; l++) {
    here = moveResidual(here, ctx.shards[w.layerShard[l]], n * c.dim);
    const { k, linear, rope, state: s } = here;
    const ropeRows = k[ROPE_ROWS_KERNEL[c.ropeKind]];
    const L = w.layers[l];
    // attention block: x += Wo · attention(rope(Wq·h + bq), rope(Wk·h + bk), Wv·h + bv) + bo, h = rmsnorm(x)
    k.rmsnorm_rows_f32(s.xb, s.x, L.attnNorm.ptr, c.dim, c.normEps, n);
    linear.input(s.xb, c.dim, n);
    linear.run([[s.q, L.wq], [s.k, L.wk], [s.v, L.wv]]);
    addBias(k, s.q, L.bq, n);
    addBias(k, s.k, L.bk, n);
    addBias(k, s.v, L.bv, n);
    ropeRows(s.q, n, c.nHeads, c.headDim, c.ropeDim, rope.ptr);
    ropeRows(s.k, n, c.nKvHeads, c.headDim, c.ropeDim, rope.ptr);
    cache.appendBatch(l, pos0, n, s.k, s.v);
    cache.attendBatch(l, pos0, n, s.q, s.att); // att[t] = softmax(q[t]·Kᵀ/√headDim) · V over positions ≤ pos0+t
    linear.input(s.att, qDim, n);
    linear.run([[s.xb2, L.wo]]);
    addBias(k, s.xb2, L.bo, n);
    k.add_f32(s.x, s.xb2, n * c.dim);

    // feed-forward block: x += W_down · (silu(W_gate·h + bg) ⊙ (W_up·h + bu)) + bd, h = rmsnorm(x)
    k.rmsnorm_rows_f32(s.xb, s.x, L.ffnNorm.ptr, c.dim, c.normEps, n);
    linear.input(s.xb, c.dim, n);
    linear.run([[s.hb, L.wGate], [s.hb2, L.wUp]]);
    addBias(k, s.hb, L.bGate, n);
    addBias(k, s.hb2, L.bUp, n);
    k.swiglu_f32(s.hb, s.hb2, n * c.ffnDim);
    linear.input(s.hb, c.ffnDim, n);
    linear.run([[s.xb2, L.wDown]]);
    addBias(k, s.xb2, L.bDown, n);
    k.add_f32(s.x, s.xb2, n * c.dim);
  }
  if (wanted === "none") return;
  // logits = W_out · rmsnorm(x) + b_out, for the last token or for every token (shard 0 holds the output)
  const { k, linear, state: s } = moveResidual(here, first, n * c.dim);
  const firstRow = wanted === "last" ? n - 1 : 0;
  const rows = n - firstRow;
  const x = s.x + firstRow * c.dim * 4;
  k.rmsnorm_rows_f32(x, x, w.outputNorm.ptr, c.dim, c.normEps, rows);
  linear.input(x, c.dim, rows);
  linear.run([[s.logits, w.output]]);
  addBias(k, s.logits, w.outputBias, rows);
}

/** The residual stream x ((n, dim) f32 at state.x) copied from one shard to another when they differ; returns `to`. */
function moveResidual(from: ShardScratch, to: ShardScratch, count: number): ShardScratch {
  if (from !== to) to.rt.f32(to.state.x, count).set(from.rt.f32(from.state.x, count));
  return to;
}

/** x[t] += b for each of the n rows (x: f32 (n, b.n)) when the model has this bias; nothing when it has none. */
function addBias(k: KernelExports, x: number, b: WeightVector | null, n: number): void {
  if (b) k.add_bias_rows_f32(x, b.ptr, b.n, n);
}
