/**
 * Rotary-embedding angles, computed in float64 for the positions of each batch and stored as f32 cos/sin pairs:
 * θ(pos, i) = freqScale · pos · base^(−2i/ropeDim) / freqFactor[i] for i < ropeDim/2, and the table holds
 * attnFactor · cos θ, attnFactor · sin θ (ggml's rope with frequency factors and linear scaling, no YaRN ramp).
 * The same table serves both pairings (adjacent for llama, halves for qwen2's NeoX rope): pair i uses angle i.
 */
import type { WasmRuntime } from "../runtime/wasm.js";
import type { ModelConfig } from "./config.js";
import type { LlamaWeights } from "./weights.js";

/** What changes the angles beyond base and dimension. */
export interface RopeScaling {
  /** (ropeDim/2) divisors of each pair's frequency (Llama 3.x `rope_freqs.weight`); null: all 1. */
  readonly freqFactors: ArrayLike<number> | null;
  /** Multiplies every angle (1 / linear scaling factor). */
  readonly freqScale: number;
  /** Multiplies cos and sin. */
  readonly attnFactor: number;
}

export const NO_ROPE_SCALING: RopeScaling = { freqFactors: null, freqScale: 1, attnFactor: 1 };

/** The model's rope scaling: metadata from the config, frequency factors from the weights. */
export function ropeScalingOf(c: ModelConfig, w: LlamaWeights): RopeScaling {
  return { freqFactors: w.ropeFreqFactors, freqScale: c.ropeFreqScale, attnFactor: c.ropeAttnFactor };
}

/**
 * The cos/sin rows of a batch's positions, computed when the batch runs (a table over the whole context would cost
 * contextSize × ropeDim/2 × 8 bytes in every shard: 16 MiB at 32K tokens for a head_dim-128 model, for nothing).
 * The same float64 formula and f32 rounding as a whole-context table, so the same bits.
 */
export class RopeRows {
  /** f32 (maxTokens, ropeDim/2, 2): attnFactor·cos θ, attnFactor·sin θ of each batch row's position. */
  readonly ptr: number;
  private readonly pairs: number;
  private readonly angleStep: Float64Array; // (ropeDim/2) θ per position of each pair
  private readonly attnFactor: number;

  constructor(
    private readonly rt: WasmRuntime,
    readonly maxTokens: number,
    ropeDim: number,
    base: number,
    scaling: RopeScaling = NO_ROPE_SCALING,
  ) {
    this.pairs = ropeDim / 2;
    const { freqFactors, freqScale, attnFactor } = scaling;
    if (freqFactors && freqFactors.length < this.pairs) {
      throw new RangeError(`rope: ${freqFactors.length} frequency factors for ${this.pairs} pairs`);
    }
    this.attnFactor = attnFactor;
    this.angleStep = Float64Array.from(
      { length: this.pairs },
      (_, i) => (freqScale * Math.pow(base, (-2 * i) / ropeDim)) / (freqFactors ? freqFactors[i] : 1),
    );
    this.ptr = rt.alloc(maxTokens * this.pairs * 8);
  }

  /** The rows of a loaded model (its rope scaling and frequency factors included). */
  static forModel(rt: WasmRuntime, maxTokens: number, c: ModelConfig, w: LlamaWeights): RopeRows {
    return new RopeRows(rt, maxTokens, c.ropeDim, c.ropeBase, ropeScalingOf(c, w));
  }

  /** Write the rows of positions pos0 .. pos0 + n − 1; returns the byte offset of the first (the rope kernels' cs0). */
  fill(pos0: number, n: number): number {
    return this.fillPositions(Array.from({ length: n }, (_, t) => pos0 + t));
  }

  /** Write row t for position positions[t] (a batch of several sequences); returns the byte offset of the first. */
  fillPositions(positions: readonly number[]): number {
    const n = positions.length;
    if (n > this.maxTokens) throw new RangeError(`rope rows for ${n} positions; this buffer holds ${this.maxTokens}`);
    const table = this.rt.f32(this.ptr, n * this.pairs * 2);
    for (let t = 0; t < n; t++) {
      const pos = positions[t];
      for (let i = 0; i < this.pairs; i++) {
        const theta = pos * this.angleStep[i];
        table[(t * this.pairs + i) * 2] = this.attnFactor * Math.cos(theta);
        table[(t * this.pairs + i) * 2 + 1] = this.attnFactor * Math.sin(theta);
      }
    }
    return this.ptr;
  }

  dispose(): void {
    this.rt.free(this.ptr);
  }
}
