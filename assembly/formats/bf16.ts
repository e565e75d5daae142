// bf16 kernels: rows of bfloat16 (the top 16 bits of a float, ggml rounding); the dot partner is bf16.
// The generic shape of these kernels and the dot's order: floatdot.ts.
import { BF16, axpyFloats, dequantizeRowFloats, quantizeRowFloats, rowDotFloats } from "./floatdot";
import { matmulRows } from "./matmul-rows";

/** n floats at src -> n bf16 at dst. */
export function quantizeRow_bf16(src: usize, dst: usize, n: i32): void {
  quantizeRowFloats(BF16, src, dst, n);
}

/** n bf16 at src -> n floats at dst. */
export function dequantizeRow_bf16(src: usize, dst: usize, n: i32): void {
  dequantizeRowFloats(BF16, src, dst, n);
}

/** Σ row[i] × x[i] over n bf16 pairs (f32 products, two f32x4 accumulators, scalar tail). */
export function dot_bf16(row: usize, x: usize, n: i32): f32 {
  return rowDotFloats(BF16, row, x, n);
}

/** out[i] += w × row[i] for n bf16 values. */
export function axpy_bf16(out: usize, w: f32, row: usize, n: i32): void {
  axpyFloats(BF16, out, w, row, n);
}

/**
 * out[t][r] = dot(W[r], X[t]) for r in [rowStart, rowEnd), t in [0, nTokens): W is (rows, cols) bf16, X is
 * (nTokens, xStride bytes) bf16, out is (nTokens, outStride bytes) f32.
 */
export function matmul_bf16(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  matmulRows(BF16, w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride);
}

/** out[r] = dot(W[r], x) for r in [rowStart, rowEnd): matmul_bf16 with one token, bit for bit. */
export function matvec_bf16(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  matmulRows(BF16, w, x, out, rowStart, rowEnd, cols, 1, 0, 0);
}
