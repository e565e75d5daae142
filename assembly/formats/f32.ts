// f32 kernels: rows of little-endian floats; the dot partner is f32.
// The generic shape of these kernels and the dot's order: floatdot.ts.
import { F32, axpyFloats, dequantizeRowFloats, quantizeRowFloats, rowDotFloats } from "./floatdot";
import { matmulRows } from "./matmul-rows";

/** n floats at src -> n f32 at dst. */
export function quantizeRow_f32(src: usize, dst: usize, n: i32): void {
  quantizeRowFloats(F32, src, dst, n);
}

/** n f32 at src -> n floats at dst. */
export function dequantizeRow_f32(src: usize, dst: usize, n: i32): void {
  dequantizeRowFloats(F32, src, dst, n);
}

/** Σ row[i] × x[i] over n f32 pairs (f32 products, two f32x4 accumulators, scalar tail). */
export function dot_f32(row: usize, x: usize, n: i32): f32 {
  return rowDotFloats(F32, row, x, n);
}

/** out[i] += w × row[i] for n f32 values. */
export function axpy_f32(out: usize, w: f32, row: usize, n: i32): void {
  axpyFloats(F32, out, w, row, n);
}

/**
 * out[t][r] = dot(W[r], X[t]) for r in [rowStart, rowEnd), t in [0, nTokens): W is (rows, cols) f32, X is
 * (nTokens, xStride bytes) f32, out is (nTokens, outStride bytes) f32.
 */
export function matmul_f32(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  matmulRows(F32, w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride);
}

/** out[r] = dot(W[r], x) for r in [rowStart, rowEnd): matmul_f32 with one token, bit for bit. */
export function matvec_f32(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  matmulRows(F32, w, x, out, rowStart, rowEnd, cols, 1, 0, 0);
}
