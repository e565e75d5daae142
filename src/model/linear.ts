/**
 * Matrix-vector products over packed weights: out = W · x.
 * The input vector is converted once to each dot-partner format its matrices need (q8_0 for q8_0/q4_0 weights,
 * f16 for f16 weights, ...), as llama.cpp does, then each matrix's own matvec kernel runs on it.
 */
import type { BlockFormat, FormatName } from "../formats/types.js";
import { getFormat } from "../formats/table.js";
import type { WasmRuntime } from "../runtime/wasm.js";
import type { WeightMatrix } from "./weights.js";

export class Linear {
  /** Per partner format: scratch holding the current input in that format, bytes ≤ 4 × maxCols. */
  private readonly converted = new Map<FormatName, { ptr: number; valid: boolean }>();
  private xPtr = 0; // f32 (n): the current input
  private n = 0;

  constructor(
    private readonly rt: WasmRuntime,
    private readonly maxCols: number,
  ) {}

  /** Make `xPtr` (f32, n values) the input of the following matvec calls. */
  input(xPtr: number, n: number): void {
    this.xPtr = xPtr;
    this.n = n;
    for (const c of this.converted.values()) c.valid = false;
  }

  /** out (f32, W.rows) = W · x for the current input. */
  matvec(outPtr: number, w: WeightMatrix): void {
    if (w.cols !== this.n) throw new RangeError(`${w.name}: ${w.cols} columns but the input has ${this.n} values`);
    this.rt.k[w.format.kernels.matvec](w.ptr, this.inputFor(w.format), outPtr, 0, w.rows, w.cols);
  }

  /** Byte offset of the current input converted to `format`'s dot partner. */
  private inputFor(format: BlockFormat): number {
    const partner = getFormat(format.dotPartner);
    if (partner.name === "f32") return this.xPtr;
    let slot = this.converted.get(partner.name);
    if (!slot) {
      slot = { ptr: this.rt.alloc(this.maxCols * 4 + 64), valid: false };
      this.converted.set(partner.name, slot);
    }
    if (!slot.valid) {
      this.rt.k[partner.kernels.quantizeRow](this.xPtr, slot.ptr, this.n);
      slot.valid = true;
    }
    return slot.ptr;
  }

  dispose(): void {
    for (const c of this.converted.values()) this.rt.free(c.ptr);
    this.converted.clear();
  }
}
