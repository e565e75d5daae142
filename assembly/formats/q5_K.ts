// q5_K kernels: 256-value super-blocks of 176 bytes (fp16 d, fp16 dmin, 12 B 6-bit scales/mins, 32 B high bits,
// 128 B nibbles); the dot partner is q8_K (see src/formats/reference/q5_K.ts). The quantizer is single-threaded.
import { f32ToF16, loadF16 } from "./common";
import { Q5_K, SCRATCH_L, axpyK, clampI, dequantizeK, matmulK, minK4, nearestInt, quantizeScaleMinK4, rowDotK, scaleK4 } from "./kquants";

const BYTES: usize = 176;

export function quantizeRow_q5_K(src: usize, dst: usize, n: i32): void {
  const nb = n >> 8;
  for (let b = 0; b < nb; b++) {
    const x = src + (<usize>b << 10);
    const o = dst + <usize>b * BYTES;
    const scales = quantizeScaleMinK4(x, 31, -0.5, 15, o + 4);
    store<u16>(o, <u16>f32ToF16(reinterpret<f32>(<u32>scales)));
    store<u16>(o + 2, <u16>f32ToF16(reinterpret<f32>(<u32>(scales >> 32))));
    const d = loadF16(o);
    const dmin = loadF16(o + 2);
    for (let j = 0; j < 8; j++) {
      const dl: f32 = d * <f32>scaleK4(j, o + 4);
      if (dl == 0) continue;
      const dm: f32 = dmin * <f32>minK4(j, o + 4);
      for (let i = 32 * j; i < 32 * j + 32; i++) {
        store<u8>(SCRATCH_L + <usize>i, <u8>clampI(nearestInt((load<f32>(x + (<usize>i << 2)) + dm) / dl), 0, 31));
      }
    }
    memory.fill(o + 16, 0, 32);
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) {
        const p = SCRATCH_L + <usize>(64 * c + l);
        let l1 = <u32>load<u8>(p);
        let l2 = <u32>load<u8>(p + 32);
        let high = <u32>load<u8>(o + 16 + <usize>l);
        if (l1 > 15) {
          l1 -= 16;
          high |= 1 << (2 * c);
        }
        if (l2 > 15) {
          l2 -= 16;
          high |= 2 << (2 * c);
        }
        store<u8>(o + 16 + <usize>l, <u8>high);
        store<u8>(o + 48 + <usize>(32 * c + l), <u8>(l1 | (l2 << 4)));
      }
    }
  }
}

export function dequantizeRow_q5_K(src: usize, dst: usize, n: i32): void {
  dequantizeK(Q5_K, src, dst, n);
}

/** Σ over super-blocks of (d_x × d) × isum [− (d_x × dmin) × summs], in f32 (kquants.ts). */
export function dot_q5_K(row: usize, x: usize, n: i32): f32 {
  return rowDotK(Q5_K, row, x, n >> 8);
}

/** out[i] += w × value[i]; the value is rounded to f32 first, as dequantizeRow does. */
export function axpy_q5_K(out: usize, w: f32, row: usize, n: i32): void {
  axpyK(Q5_K, out, w, row, n);
}

/** out[t][r] = dot(W[r], X[t]): W (rows, cols) q5_K, X (nTokens, xStride bytes) q8_K, out (nTokens, outStride bytes) f32. */
export function matmul_q5_K(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  matmulK(Q5_K, w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride);
}

/** out[r] = dot(W[r], x) for r in [rowStart, rowEnd): matmul_q5_K with one token, bit for bit. */
export function matvec_q5_K(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  matmulK(Q5_K, w, x, out, rowStart, rowEnd, cols, 1, 0, 0);
}
