// q8_0 kernels: 32-value blocks of 34 bytes (fp16 d, 32 × int8); the dot partner is q8_0 (see src/formats/reference/q8_0.ts).
import { axpyQuants16, dequantQuants16, dotI8x16, hsumI32x4, loadF16, quantizeQ8Block } from "./common";
import { Q8_0 } from "./rowdot";
import { matmulRows } from "./matmul-rows";

const BYTES: usize = 34;

export function quantizeRow_q8_0(src: usize, dst: usize, n: i32): void {
  const nb = <usize>(n >> 5);
  for (let b: usize = 0; b < nb; b++) quantizeQ8Block(src + b * 128, dst + b * BYTES, dst + b * BYTES + 2, 0);
}

export function dequantizeRow_q8_0(src: usize, dst: usize, n: i32): void {
  const nb = <usize>(n >> 5);
  for (let b: usize = 0; b < nb; b++) {
    const block = src + b * BYTES;
    const d = f32x4.splat(loadF16(block));
    const o = dst + b * 128;
    dequantQuants16(o, v128.load(block, 2), d);
    dequantQuants16(o + 64, v128.load(block, 18), d);
  }
}

/** Per block: integer Σ qa × qb (i8 -> i16, i32x4.dot_i16x8_s), times float(da × db); blocks summed in f32. */
export function dot_q8_0(row: usize, x: usize, n: i32): f32 {
  const nb = <usize>(n >> 5);
  let sum: f32 = 0;
  for (let b: usize = 0; b < nb; b++) {
    const a = row + b * BYTES;
    const c = x + b * BYTES;
    const sumi = hsumI32x4(i32x4.add(dotI8x16(v128.load(a, 2), v128.load(c, 2)), dotI8x16(v128.load(a, 18), v128.load(c, 18))));
    sum += <f32>sumi * (loadF16(a) * loadF16(c));
  }
  return sum;
}

/** out[i] += w × (q[i] × d) for n values; the value is rounded to f32 before scaling, as dequantizeRow does. */
export function axpy_q8_0(out: usize, w: f32, row: usize, n: i32): void {
  const weight = f32x4.splat(w);
  const nb = <usize>(n >> 5);
  for (let b: usize = 0; b < nb; b++) {
    const block = row + b * BYTES;
    const d = f32x4.splat(loadF16(block));
    const o = out + b * 128;
    axpyQuants16(o, v128.load(block, 2), d, weight);
    axpyQuants16(o + 64, v128.load(block, 18), d, weight);
  }
}

/**
 * out[t][r] = dot(W[r], X[t]) for r in [rowStart, rowEnd), t in [0, nTokens): W is (rows, cols) q8_0, X is
 * (nTokens, xStride bytes) q8_0, out is (nTokens, outStride bytes) f32. Summation order: rowdot.ts.
 */
export function matmul_q8_0(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  matmulRows(Q8_0, w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride);
}

/** out[r] = dot(W[r], x) for r in [rowStart, rowEnd): matmul_q8_0 with one token, bit for bit. */
export function matvec_q8_0(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  matmulRows(Q8_0, w, x, out, rowStart, rowEnd, cols, 1, 0, 0);
}
