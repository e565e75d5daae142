// q2_K kernels: 256-value super-blocks of 84 bytes (16 B 4-bit scales/mins, 64 B 2-bit levels, fp16 d, fp16 dmin);
// the dot partner is q8_K (see src/formats/reference/q2_K.ts). The quantizer is single-threaded (kquants.ts).
import { f32ToF16, loadF16 } from "./common";
import {
  Q2_K, SCRATCH_L, SCRATCH_MINS, SCRATCH_SCALES, SCRATCH_WEIGHTS, axpyK, clampI, dequantizeK, makeQkx2Quants, matmulK,
  matvecK, nearestInt, pack2Bit, rowDotK, superBlockIntsK,
} from "./kquants";

const BYTES: usize = 84;

export function quantizeRow_q2_K(src: usize, dst: usize, n: i32): void {
  const nb = n >> 8;
  for (let b = 0; b < nb; b++) {
    const x = src + (<usize>b << 10);
    const o = dst + <usize>b * BYTES;
    let maxScale: f32 = 0;
    let maxMin: f32 = 0;
    for (let g = 0; g < 16; g++) {
      const xg = x + (<usize>g << 6);
      for (let l = 0; l < 16; l++) store<f32>(SCRATCH_WEIGHTS + (<usize>l << 2), Mathf.abs(load<f32>(xg + (<usize>l << 2))));
      const minAt = SCRATCH_MINS + (<usize>g << 2);
      const scale = makeQkx2Quants(16, 3, xg, SCRATCH_WEIGHTS, SCRATCH_L + (<usize>g << 4), minAt, -0.5, 0.1, 15, true);
      store<f32>(SCRATCH_SCALES + (<usize>g << 2), scale);
      if (scale > maxScale) maxScale = scale;
      const min = load<f32>(minAt);
      if (min > maxMin) maxMin = min;
    }
    memory.fill(o, 0, 16);
    if (maxScale > 0) {
      const iscale: f32 = <f32>15.0 / maxScale;
      for (let g = 0; g < 16; g++) store<u8>(o + <usize>g, <u8>nearestInt(iscale * load<f32>(SCRATCH_SCALES + (<usize>g << 2))));
      store<u16>(o + 80, <u16>f32ToF16(maxScale / 15));
    } else {
      store<u16>(o + 80, 0);
    }
    if (maxMin > 0) {
      const iscale: f32 = <f32>15.0 / maxMin;
      for (let g = 0; g < 16; g++) {
        const l = nearestInt(iscale * load<f32>(SCRATCH_MINS + (<usize>g << 2)));
        store<u8>(o + <usize>g, load<u8>(o + <usize>g) | <u8>(l << 4));
      }
      store<u16>(o + 82, <u16>f32ToF16(maxMin / 15));
    } else {
      store<u16>(o + 82, 0);
    }
    const d = loadF16(o + 80);
    const dmin = loadF16(o + 82);
    for (let g = 0; g < 16; g++) {
      const sc = <i32>load<u8>(o + <usize>g);
      const dl: f32 = d * <f32>(sc & 15);
      if (dl == 0) continue;
      const dm: f32 = dmin * <f32>(sc >> 4);
      for (let i = 16 * g; i < 16 * g + 16; i++) {
        store<u8>(SCRATCH_L + <usize>i, <u8>clampI(nearestInt((load<f32>(x + (<usize>i << 2)) + dm) / dl), 0, 3));
      }
    }
    pack2Bit(o + 16);
  }
}

/** The integers of the super-block at wb against the q8_K block at xb (kquants.ts's intsOf). */
// @ts-ignore: decorator
@final class Q2KInts {
  // @ts-ignore: decorator
  @inline ints(wb: usize, xb: usize): v128 {
    return superBlockIntsK(Q2_K, wb, xb);
  }
}

export function dequantizeRow_q2_K(src: usize, dst: usize, n: i32): void {
  dequantizeK(Q2_K, src, dst, n);
}

/** Σ over super-blocks of (d_x × d) × isum [− (d_x × dmin) × summs], in f32 (kquants.ts). */
export function dot_q2_K(row: usize, x: usize, n: i32): f32 {
  return rowDotK<Q2KInts>(Q2_K, row, x, n >> 8);
}

/** out[i] += w × value[i]; the value is rounded to f32 first, as dequantizeRow does. */
export function axpy_q2_K(out: usize, w: f32, row: usize, n: i32): void {
  axpyK(Q2_K, out, w, row, n);
}

/** out[t][r] = dot(W[r], X[t]): W (rows, cols) q2_K, X (nTokens, xStride bytes) q8_K, out (nTokens, outStride bytes) f32. */
export function matmul_q2_K(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  matmulK<Q2KInts>(Q2_K, w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride);
}

/** out[r] = dot(W[r], x) for r in [rowStart, rowEnd): matmul_q2_K with one token, bit for bit (kquants.ts's matvecK). */
export function matvec_q2_K(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  matvecK<Q2KInts>(Q2_K, w, x, out, rowStart, rowEnd, cols);
}
