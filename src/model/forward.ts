/**
 * The Llama forward pass, as llama.cpp computes it, for a batch of tokens from one or several sequences (each a run of
 * consecutive positions in its own KV cache: one session's prompt chunk, or the next token of each of a server's
 * slots). It reads the weights, writes the model's scratch and the sequences' KV caches; it never allocates and never
 * knows how a cache stores K and V. Every step works on all the batch's tokens at once: matrices as matrix-matrix
 * products (each weight row read once per batch), attention per sequence, causal within it. The matrix kernels give
 * every token the bits it gets alone, so a sequence's output does not depend on what else is in the batch.
 * Architectures (llama, qwen2) differ only in data: the rope kind in the config, optional biases in the weights.
 * Layers may live in different WebAssembly memories (shards): the residual stream x moves to the next layer's shard
 * when it changes, and back to shard 0 for the output.
 */
import type { ShardedKvCache } from "../kv/sharded.js";
import type { ThreadPool } from "../runtime/pool.js";
import type { KernelExports, WasmRuntime } from "../runtime/wasm.js";
import type { ModelConfig, RopeKind } from "./config.js";
import type { Linear } from "./linear.js";
import type { RopeRows } from "./rope.js";
import { PARALLEL_SWIGLU_VALUES, type RowRunner } from "./rows.js";
import type { RunState } from "./state.js";
import type { LlamaWeights, WeightVector } from "./weights.js";

/** The rows kernel of each rope pairing (both read the same cos/sin table). */
export const ROPE_ROWS_KERNEL: Readonly<Record<RopeKind, string>> = { norm: "rope_norm_rows_f32", neox: "rope_neox_rows_f32" };

/** What the forward pass works with in one weight shard (a WebAssembly memory holding some layers' weights). */
export interface ShardScratch {
  readonly rt: WasmRuntime;
  readonly k: KernelExports;
  readonly linear: Linear;
  /** Row-wise kernels of a batch across the pool's threads. */
  readonly rows: RowRunner;
  readonly rope: RopeRows;
  readonly state: RunState;
  /** The model's thread pool (every shard's): several sequences' K/V stores, then their attention, each in one run. */
  readonly pool: ThreadPool;
}

/** The model's side of a forward pass: weights and the scratch of each weight shard. */
export interface ModelContext {
  readonly config: ModelConfig;
  readonly weights: LlamaWeights;
  /** Indexed by shard: the scratch of each shard holding weights (shard 0: embedding, output and the first layers). */
  readonly shards: readonly ShardScratch[];
}

export interface ForwardContext extends ModelContext {
  readonly cache: ShardedKvCache;
}

/** Which tokens of a sequence need next-token logits (in state.logits, one row per such token, in batch order). */
export type LogitsWanted = "none" | "last" | "all";

/** One sequence's part of a batch: `tokens` at positions pos0, pos0 + 1, ... of `cache`. */
export interface BatchSequence {
  readonly cache: ShardedKvCache;
  readonly tokens: readonly number[];
  readonly pos0: number;
  readonly wanted: LogitsWanted;
}

/**
 * Run `tokens` (at most state.maxTokens) at positions pos0, pos0+1, ...; afterwards state.logits holds
 * (1 or tokens.length, nVocab) logits as `wanted` says.
 */
export function forward(ctx: ForwardContext, tokens: readonly number[], pos0: number, wanted: LogitsWanted): void {
  forwardBatch(ctx, [{ cache: ctx.cache, tokens, pos0, wanted }]);
}

/**
 * Run several sequences' tokens as one batch (at most state.maxTokens in all); afterwards state.logits holds the
 * wanted rows of each sequence, sequence by sequence in order.
 */
export function forwardBatch(ctx: ModelContext, seqs: readonly BatchSequence[]): void {
  const { config: c, weights: w } = ctx;
  const tokens = seqs.flatMap((q) => q.tokens);
  const positions = seqs.flatMap((q) => q.tokens.map((_, t) => q.pos0 + t));
  const starts: number[] = []; // (seqs) each sequence's first row in the batch
  seqs.reduce((at, q) => (starts.push(at), at + q.tokens.length), 0);
  const n = tokens.length;
  const qDim = c.nHeads * c.headDim;
  const first = ctx.shards[0];
  for (let t = 0; t < n; t++) {
    const e = w.tokenEmbd; // x[t] = E[token t], decoded from its block format
    first.k[e.format.kernels.dequantizeRow](e.ptr + tokens[t] * e.rowBytes, first.state.x + t * c.dim * 4, c.dim);
  }
  for (const shard of ctx.shards) shard.rope.fillPositions(positions); // cos/sin of each token's position

  let here = first;
  for (let l = 0; l < c.nLayers; l++) {
    here = moveResidual(here, ctx.shards[w.layerShard[l]], n * c.dim);
    const { k, linear, rows, rope, pool, state: s } = here;
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
    // each sequence's rows: att[t] = softmax(q[t]·Kᵀ/√headDim) · V over its positions ≤ pos0 + t; every sequence's
    // stores in one pool run, then every sequence's attention in one, where their caches allow (runsTogether)
    const together = seqs.length > 1 && seqs.every((q) => q.cache.runsTogether(l));
    const inOneRun = (f: () => void) => (together ? pool.runTogether(f) : f());
    inOneRun(() => seqs.forEach((q, i) => q.cache.appendBatch(l, q.pos0, q.tokens.length, s.k + starts[i] * c.kvDim * 4, s.v + starts[i] * c.kvDim * 4)));
    inOneRun(() => seqs.forEach((q, i) => q.cache.attendBatch(l, q.pos0, q.tokens.length, s.q + starts[i] * qDim * 4, s.att + starts[i] * qDim * 4)));
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
    // swiglu_rows_f32(gate, up, rowStart, rowEnd, n)
    rows.run("swiglu_rows_f32", [s.hb, s.hb2, 0, n, c.ffnDim], 2, 3, n, c.ffnDim, PARALLEL_SWIGLU_VALUES);
    linear.input(s.hb, c.ffnDim, n);
    linear.run([[s.xb2, L.wDown]]);
    addBias(k, s.xb2, L.bDown, n);
    k.add_f32(s.x, s.xb2, n * c.dim);
  }
  // the rows that want logits, in batch order
  const wantedRows = seqs.flatMap((q, i) =>
    q.wanted === "none" ? [] : q.wanted === "last" ? [starts[i] + q.tokens.length - 1] : q.tokens.map((_, t) => starts[i] + t),
  );
  if (wantedRows.length === 0) return;
  // logits = W_out · rmsnorm(x) + b_out for those rows, gathered to the front of x (shard 0 holds the output)
  const { k, linear, state: s } = moveResidual(here, first, n * c.dim);
  const rows = wantedRows.length;
  let x = s.x;
  if (wantedRows[0] === n - rows && wantedRows[rows - 1] === n - 1) x = s.x + (n - rows) * c.dim * 4; // already together at the end
  else {
    const all = first.rt.f32(s.x, n * c.dim); // (n, dim)
    wantedRows.forEach((r, i) => all.copyWithin(i * c.dim, r * c.dim, (r + 1) * c.dim)); // r >= i: front to back is safe
  }
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
