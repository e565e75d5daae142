/** Scratch buffers of one session for a batch of up to `maxTokens` tokens, allocated once; forward() never allocates. */
import type { WasmRuntime } from "../runtime/wasm.js";
import type { ModelConfig } from "./config.js";

export class RunState {
  readonly x: number; // f32 (maxTokens, dim): the residual stream
  readonly xb: number; // f32 (maxTokens, dim): normed residual, matmul input
  readonly xb2: number; // f32 (maxTokens, dim): a block's output before the residual add
  readonly q: number; // f32 (maxTokens, nHeads, headDim)
  readonly k: number; // f32 (maxTokens, nKvHeads, headDim)
  readonly v: number; // f32 (maxTokens, nKvHeads, headDim)
  readonly att: number; // f32 (maxTokens, nHeads, headDim): attention output
  readonly hb: number; // f32 (maxTokens, ffnDim): gate, then silu(gate) * up
  readonly hb2: number; // f32 (maxTokens, ffnDim): up
  readonly logits: number; // f32 (maxTokens, nVocab)
  private readonly all: number[];

  constructor(
    private readonly rt: WasmRuntime,
    c: ModelConfig,
    readonly maxTokens: number,
  ) {
    const f32 = (perToken: number) => rt.alloc(maxTokens * perToken * 4);
    const qDim = c.nHeads * c.headDim;
    this.all = [
      (this.x = f32(c.dim)),
      (this.xb = f32(c.dim)),
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
