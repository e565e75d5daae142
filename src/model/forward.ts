/**
 * The Llama forward pass for one token at one position, as llama.cpp computes it.
 * It reads the weights, writes the session's scratch and its KV cache; it never allocates and never knows
 * how the cache stores K and V.
 */
import type { KvCache } from "../kv/cache.js";
import type { KernelExports } from "../runtime/wasm.js";
import type { ModelConfig } from "./config.js";
import type { Linear } from "./linear.js";
import type { RopeTable } from "./rope.js";
import type { RunState } from "./state.js";
import type { LlamaWeights, WeightMatrix, WeightVector } from "./weights.js";

export interface ForwardContext {
  readonly config: ModelConfig;
  readonly weights: LlamaWeights;
  readonly k: KernelExports;
  readonly linear: Linear;
  readonly rope: RopeTable;
  readonly state: RunState;
  readonly cache: KvCache;
}

/** Run `token` at position `pos`; with `wantLogits`, state.logits holds the next-token logits afterwards. */
export function forward(ctx: ForwardContext, token: number, pos: number, wantLogits: boolean): void {
  const { config: c, weights: w, k, linear, rope, state: s, cache } = ctx;
  const qDim = c.nHeads * c.headDim;
  embed(ctx, s.x, w.tokenEmbd, token); // x = E[token]

  for (let l = 0; l < c.nLayers; l++) {
    const L = w.layers[l];
    // attention block: x += Wo · attention(rope(Wq·h), rope(Wk·h), Wv·h), h = rmsnorm(x)
    rmsnorm(ctx, s.xb, s.x, L.attnNorm);
    linear.input(s.xb, c.dim);
    linear.matvec(s.q, L.wq);
    linear.matvec(s.k, L.wk);
    linear.matvec(s.v, L.wv);
    k.rope_norm_f32(s.q, c.nHeads, c.headDim, c.ropeDim, rope.row(pos));
    k.rope_norm_f32(s.k, c.nKvHeads, c.headDim, c.ropeDim, rope.row(pos));
    cache.append(l, pos, s.k, s.v);
    cache.attend(l, pos + 1, s.q, s.att); // att = softmax(q·Kᵀ/√headDim) · V over positions 0..pos
    linear.input(s.att, qDim);
    linear.matvec(s.xb2, L.wo);
    k.add_f32(s.x, s.xb2, c.dim);

    // feed-forward block: x += W_down · (silu(W_gate·h) ⊙ W_up·h), h = rmsnorm(x)
    rmsnorm(ctx, s.xb, s.x, L.ffnNorm);
    linear.input(s.xb, c.dim);
    linear.matvec(s.hb, L.wGate);
    linear.matvec(s.hb2, L.wUp);
    k.swiglu_f32(s.hb, s.hb2, c.ffnDim);
    linear.input(s.hb, c.ffnDim);
    linear.matvec(s.xb2, L.wDown);
    k.add_f32(s.x, s.xb2, c.dim);
  }
  if (!wantLogits) return;
  rmsnorm(ctx, s.x, s.x, w.outputNorm);
  linear.input(s.x, c.dim);
  linear.matvec(s.logits, w.output); // logits = W_out · rmsnorm(x)
}

function rmsnorm(ctx: ForwardContext, out: number, x: number, g: WeightVector): void {
  ctx.k.rmsnorm_f32(out, x, g.ptr, g.n, ctx.config.normEps);
}

/** out (f32, dim) = row `token` of the embedding matrix, decoded from its block format. */
function embed(ctx: ForwardContext, out: number, e: WeightMatrix, token: number): void {
  ctx.k[e.format.kernels.dequantizeRow](e.ptr + token * e.rowBytes, out, e.cols);
}
