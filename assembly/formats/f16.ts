// f16 kernels: rows of IEEE half floats (ggml rounding, see common.ts); the dot partner is f16.
// The generic shape of these kernels and the dot's order: floatdot.ts.
import { F16, axpyFloats, dequantizeRowFloats, quantizeRowFloats, rowDotFloats } from "./floatdot";
import { matmulRows } from "./matmul-rows";

/** n floats at src -> n f16 at dst. */
export function quantizeRow_f16(src: usize, dst: usize, n: i32): void {
  quantizeRowFloats(F16, src, dst, n);
}

/** n f16 at src -> n floats at dst. */
export function dequantizeRow_f16(src: usize, dst: usize, n: i32): void {
  dequantizeRowFloats(F16, src, dst, n);
}

/** Σ row[i] × x[i] over n f16 pairs (f32 products, two f32x4 accumulators, scalar tail). */
export function dot_f16(row: usize, x: usize, n: i32): f32 {
  return rowDotFloats(F16, row, x, n);
}

/** out[i] += w × row[i] for n f16 values. */
export function axpy_f16(out: usize, w: f32, row: usize, n: i32): void {
  axpyFloats(F16, out, w, row, n);
}

/**
 * out[t][r] = dot(W[r], X[t]) for r in [rowStart, rowEnd), t in [0, nTokens): W is (rows, cols) f16, X is
 * (nTokens, xStride bytes) f16, out is (nTokens, outStride bytes) f32.
 */
export function matmul_f16(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  matmulRows(F16, w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride);
}

/** out[r] = dot(W[r], x) for r in [rowStart, rowEnd): matmul_f16 with one token, bit for bit. */
export function matvec_f16(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  matmulRows(F16, w, x, out, rowStart, rowEnd, cols, 1, 0, 0);
}
