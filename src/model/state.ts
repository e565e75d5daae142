/** Scratch buffers of one session, allocated once; forward() never allocates. */
import type { WasmRuntime } from "../runtime/wasm.js";
import type { ModelConfig } from "./config.js";

export class RunState {
  readonly x: number; // f32 (dim): the residual stream
  readonly xb: number; // f32 (dim): normed residual, matvec input
  readonly xb2: number; // f32 (dim): a block's output before the residual add
  readonly q: number; // f32 (nHeads, headDim)
  readonly k: number; // f32 (nKvHeads, headDim)
  readonly v: number; // f32 (nKvHeads, headDim)
  readonly att: number; // f32 (nHeads, headDim): attention output
  readonly hb: number; // f32 (ffnDim): gate, then silu(gate) * up
  readonly hb2: number; // f32 (ffnDim): up
  readonly logits: number; // f32 (nVocab)
  private readonly all: number[];

  constructor(
    private readonly rt: WasmRuntime,
    c: ModelConfig,
  ) {
    const f32 = (n: number) => rt.alloc(n * 4);
    const qDim = c.nHeads * c.headDim;
    this.all = [
      (this.x = f32(c.dim)),
      (this.xb = f32(Math.max(c.dim, qDim))),
      (this.xb2 = f32(c.dim)),
      (this.q = f32(qDim)),
      (this.k = f32(c.kvDim)),
      (this.v = f32(c.kvDim)),
      (this.att = f32(qDim)),
      (this.hb = f32(c.ffnDim)),
      (this.hb2 = f32(c.ffnDim)),
      (this.logits = f32(c.nVocab)),
    ];
  }

  dispose(): void {
    for (const p of this.all) this.rt.free(p);
  }
}
