// q4_K kernels: 256-value super-blocks of 144 bytes (fp16 d, fp16 dmin, 12 B 6-bit scales/mins, 128 B nibbles);
// the dot partner is q8_K (see src/formats/reference/q4_K.ts). The quantizer is single-threaded (kquants.ts).
import { f32ToF16, loadF16 } from "./common";
import { Q4_K, SCRATCH_L, axpyK, clampI, dequantizeK, matmulK, minK4, nearestInt, quantizeScaleMinK4, rowDotK, scaleK4 } from "./kquants";

const BYTES: usize = 144;

export function quantizeRow_q4_K(src: usize, dst: usize, n: i32): void {
  const nb = n >> 8;
  for (let b = 0; b < nb; b++) {
    const x = src + (<usize>b << 10);
    const o = dst + <usize>b * BYTES;
    const scales = quantizeScaleMinK4(x, 15, -1, 20, o + 4);
    store<u16>(o, <u16>f32ToF16(reinterpret<f32>(<u32>scales)));
    store<u16>(o + 2, <u16>f32ToF16(reinterpret<f32>(<u32>(scales >> 32))));
    const d = loadF16(o);
    const dmin = loadF16(o + 2);
    for (let j = 0; j < 8; j++) {
      const dl: f32 = d * <f32>scaleK4(j, o + 4);
      if (dl == 0) continue;
      const dm: f32 = dmin * <f32>minK4(j, o + 4);
      for (let i = 32 * j; i < 32 * j + 32; i++) {
        store<u8>(SCRATCH_L + <usize>i, <u8>clampI(nearestInt((load<f32>(x + (<usize>i << 2)) + dm) / dl), 0, 15));
      }
    }
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) {
        const p = SCRATCH_L + <usize>(64 * c + l);
        store<u8>(o + 16 + <usize>(32 * c + l), load<u8>(p) | (load<u8>(p + 32) << 4));
      }
    }
  }
}

export function dequantizeRow_q4_K(src: usize, dst: usize, n: i32): void {
  dequantizeK(Q4_K, src, dst, n);
}

/** Σ over super-blocks of (d_x × d) × isum [− (d_x × dmin) × summs], in f32 (kquants.ts). */
export function dot_q4_K(row: usize, x: usize, n: i32): f32 {
  return rowDotK(Q4_K, row, x, n >> 8);
}

/** out[i] += w × value[i]; the value is rounded to f32 first, as dequantizeRow does. */
export function axpy_q4_K(out: usize, w: f32, row: usize, n: i32): void {
  axpyK(Q4_K, out, w, row, n);
}

/** out[t][r] = dot(W[r], X[t]): W (rows, cols) q4_K, X (nTokens, xStride bytes) q8_K, out (nTokens, outStride bytes) f32. */
export function matmul_q4_K(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  matmulK(Q4_K, w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride);
}

/** out[r] = dot(W[r], x) for r in [rowStart, rowEnd): matmul_q4_K with one token, bit for bit. */
export function matvec_q4_K(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  matmulK(Q4_K, w, x, out, rowStart, rowEnd, cols, 1, 0, 0);
}
