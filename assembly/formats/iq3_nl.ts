// iq3_nl kernels: kvsplit's own 3-bit codebook KV format (layout and rules: codebook.ts). Dot partner: q8_0.
// Byte offsets everywhere; n counts values and is a whole number of 32-value blocks.

import { CB_IQ3_NL, axpyCodebook, dequantizeRowCodebook, dotCodebook, quantizeRowCodebook } from "./codebook";
import { IQ3_NL } from "./rowdot";
import { matmulRows } from "./matmul-rows";

const CB: i32 = CB_IQ3_NL;

/** Quantize n floats at src into iq3_nl blocks at dst (the trial-scale least-squares search of codebook.ts). */
export function quantizeRow_iq3_nl(src: usize, dst: usize, n: i32): void {
  quantizeRowCodebook(CB, src, dst, n);
}

/** Decode n values of iq3_nl blocks at src into f32 at dst. */
export function dequantizeRow_iq3_nl(src: usize, dst: usize, n: i32): void {
  dequantizeRowCodebook(CB, src, dst, n);
}

/** Dot of an iq3_nl row (n values) with x already quantized to q8_0. */
export function dot_iq3_nl(row: usize, x: usize, n: i32): f32 {
  return dotCodebook(CB, row, x, n);
}

/** out[i] += w × value[i] for the n values of an iq3_nl row (V accumulation). */
export function axpy_iq3_nl(out: usize, w: f32, row: usize, n: i32): void {
  axpyCodebook(CB, out, w, row, n);
}

/** out[t][r] = dot(W[r], X[t]): W (rows, cols) iq3_nl, X (nTokens, xStride bytes) q8_0, out (nTokens, outStride bytes) f32. */
export function matmul_iq3_nl(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  matmulRows(IQ3_NL, w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride);
}

/** out[r] = dot(W[r], x) for r in [rowStart, rowEnd): matmul_iq3_nl with one token, bit for bit. */
export function matvec_iq3_nl(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  matmulRows(IQ3_NL, w, x, out, rowStart, rowEnd, cols, 1, 0, 0);
}
