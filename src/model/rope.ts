/**
 * Rotary-embedding angles, computed once per session in float64 and stored as f32 cos/sin pairs:
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

export class RopeTable {
  /** f32 (contextSize, ropeDim/2, 2): attnFactor·cos θ, attnFactor·sin θ. */
  readonly ptr: number;
  private readonly pairs: number;

  constructor(
    private readonly rt: WasmRuntime,
    contextSize: number,
    ropeDim: number,
    base: number,
    scaling: RopeScaling = NO_ROPE_SCALING,
  ) {
    this.pairs = ropeDim / 2;
    const { freqFactors, freqScale, attnFactor } = scaling;
    if (freqFactors && freqFactors.length < this.pairs) {
      throw new RangeError(`rope: ${freqFactors.length} frequency factors for ${this.pairs} pairs`);
    }
    this.ptr = rt.alloc(contextSize * this.pairs * 8);
    const table = rt.f32(this.ptr, contextSize * this.pairs * 2);
    const angleStep = Array.from(
      { length: this.pairs },
      (_, i) => (freqScale * Math.pow(base, (-2 * i) / ropeDim)) / (freqFactors ? freqFactors[i] : 1),
    );
    for (let pos = 0; pos < contextSize; pos++) {
      for (let i = 0; i < this.pairs; i++) {
        const theta = pos * angleStep[i];
        table[(pos * this.pairs + i) * 2] = attnFactor * Math.cos(theta);
        table[(pos * this.pairs + i) * 2 + 1] = attnFactor * Math.sin(theta);
      }
    }
  }

  /** The table of a loaded model (its rope scaling and frequency factors included). */
  static forModel(rt: WasmRuntime, contextSize: number, c: ModelConfig, w: LlamaWeights): RopeTable {
    return new RopeTable(rt, contextSize, c.ropeDim, c.ropeBase, ropeScalingOf(c, w));
  }

  /** Byte offset of position `pos`'s (ropeDim/2, 2) cos/sin row. */
  row(pos: number): number {
    return this.ptr + pos * this.pairs * 8;
  }

  dispose(): void {
    this.rt.free(this.ptr);
  }
}
