/**
 * Rotary-embedding angles, computed once per session in float64 and stored as f32 cos/sin pairs:
 * θ(pos, i) = pos · base^(−2i/ropeDim) for i < ropeDim/2.
 */
import type { WasmRuntime } from "../runtime/wasm.js";

export class RopeTable {
  /** f32 (contextSize, ropeDim/2, 2): cos θ, sin θ. */
  readonly ptr: number;
  private readonly pairs: number;

  constructor(
    private readonly rt: WasmRuntime,
    contextSize: number,
    ropeDim: number,
    base: number,
  ) {
    this.pairs = ropeDim / 2;
    this.ptr = rt.alloc(contextSize * this.pairs * 8);
    const table = rt.f32(this.ptr, contextSize * this.pairs * 2);
    const invFreq = Array.from({ length: this.pairs }, (_, i) => Math.pow(base, (-2 * i) / ropeDim));
    for (let pos = 0; pos < contextSize; pos++) {
      for (let i = 0; i < this.pairs; i++) {
        const theta = pos * invFreq[i];
        table[(pos * this.pairs + i) * 2] = Math.cos(theta);
        table[(pos * this.pairs + i) * 2 + 1] = Math.sin(theta);
      }
    }
  }

  /** Byte offset of position `pos`'s (ropeDim/2, 2) cos/sin row. */
  row(pos: number): number {
    return this.ptr + pos * this.pairs * 8;
  }

  dispose(): void {
    this.rt.free(this.ptr);
  }
}
