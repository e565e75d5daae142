// q6_K kernels: 256-value super-blocks of 210 bytes (128 B low nibbles, 64 B high bit pairs, 16 × int8 scales, fp16 d);
// the dot partner is q8_K (see src/formats/reference/q6_K.ts). The quantizer is single-threaded (kquants.ts).
import { f32ToF16, loadF16 } from "./common";
import { Q6_K, SCRATCH_L, SCRATCH_SCALES, axpyK, clampI, dequantizeK, makeQxQuants, matmulK, nearestInt, rowDotK } from "./kquants";

const BYTES: usize = 210;
const GROUP_MAX_EPS: f32 = 1e-15;

export function quantizeRow_q6_K(src: usize, dst: usize, n: i32): void {
  const nb = n >> 8;
  for (let b = 0; b < nb; b++) {
    const x = src + (<usize>b << 10);
    const o = dst + <usize>b * BYTES;
    let maxScale: f32 = 0;
    let maxAbsScale: f32 = 0;
    for (let g = 0; g < 16; g++) {
      const scale = makeQxQuants(16, 32, x + (<usize>g << 6), SCRATCH_L + (<usize>g << 4));
      store<f32>(SCRATCH_SCALES + (<usize>g << 2), scale);
      if (Mathf.abs(scale) > maxAbsScale) {
        maxAbsScale = Mathf.abs(scale);
        maxScale = scale;
      }
    }
    memory.fill(o, 0, BYTES);
    if (maxAbsScale < GROUP_MAX_EPS) continue;
    const iscale: f32 = <f32>-128.0 / maxScale;
    store<u16>(o + 208, <u16>f32ToF16(<f32>1.0 / iscale));
    const d = loadF16(o + 208);
    for (let g = 0; g < 16; g++) {
      let v = nearestInt(iscale * load<f32>(SCRATCH_SCALES + (<usize>g << 2)));
      if (v > 127) v = 127;
      store<u8>(o + 192 + <usize>g, <u8>v);
    }
    for (let g = 0; g < 16; g++) {
      const dl: f32 = d * <f32>load<i8>(o + 192 + <usize>g);
      if (dl == 0) continue;
      for (let i = 16 * g; i < 16 * g + 16; i++) {
        store<u8>(SCRATCH_L + <usize>i, <u8>(clampI(nearestInt(load<f32>(x + (<usize>i << 2)) / dl), -32, 31) + 32));
      }
    }
    for (let c = 0; c < 2; c++) {
      for (let l = 0; l < 32; l++) {
        const p = SCRATCH_L + <usize>(128 * c + l);
        const a = <u32>load<u8>(p);
        const b2 = <u32>load<u8>(p + 32);
        const c3 = <u32>load<u8>(p + 64);
        const d4 = <u32>load<u8>(p + 96);
        store<u8>(o + <usize>(64 * c + l), <u8>((a & 15) | ((c3 & 15) << 4)));
        store<u8>(o + <usize>(64 * c + 32 + l), <u8>((b2 & 15) | ((d4 & 15) << 4)));
        store<u8>(o + 128 + <usize>(32 * c + l), <u8>((a >> 4) | ((b2 >> 4) << 2) | ((c3 >> 4) << 4) | ((d4 >> 4) << 6)));
      }
    }
  }
}

export function dequantizeRow_q6_K(src: usize, dst: usize, n: i32): void {
  dequantizeK(Q6_K, src, dst, n);
}

/** Σ over super-blocks of (d_x × d) × isum [− (d_x × dmin) × summs], in f32 (kquants.ts). */
export function dot_q6_K(row: usize, x: usize, n: i32): f32 {
  return rowDotK(Q6_K, row, x, n >> 8);
}

/** out[i] += w × value[i]; the value is rounded to f32 first, as dequantizeRow does. */
export function axpy_q6_K(out: usize, w: f32, row: usize, n: i32): void {
  axpyK(Q6_K, out, w, row, n);
}

/** out[t][r] = dot(W[r], X[t]): W (rows, cols) q6_K, X (nTokens, xStride bytes) q8_K, out (nTokens, outStride bytes) f32. */
export function matmul_q6_K(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  matmulK(Q6_K, w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride);
}

/** out[r] = dot(W[r], x) for r in [rowStart, rowEnd): matmul_q6_K with one token, bit for bit. */
export function matvec_q6_K(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  matmulK(Q6_K, w, x, out, rowStart, rowEnd, cols, 1, 0, 0);
}
