// q3_K kernels: 256-value super-blocks of 110 bytes (32 B high bits, 64 B 2-bit levels, 12 B 6-bit scales, fp16 d);
// the dot partner is q8_K (see src/formats/reference/q3_K.ts). The quantizer is single-threaded (kquants.ts).
import { f32ToF16, loadF16 } from "./common";
import {
  Q3_K, SCRATCH_L, SCRATCH_SCALES, axpyK, clampI, dequantizeK, makeQ3Quants, matmulK, matvecK, nearestInt, pack2Bit, rowDotK, scaleQ3K, superBlockIntsK,
} from "./kquants";

const BYTES: usize = 110;

export function quantizeRow_q3_K(src: usize, dst: usize, n: i32): void {
  const nb = n >> 8;
  for (let b = 0; b < nb; b++) {
    const x = src + (<usize>b << 10);
    const o = dst + <usize>b * BYTES;
    let maxScale: f32 = 0;
    let amax: f32 = 0;
    for (let g = 0; g < 16; g++) {
      const scale = makeQ3Quants(16, 4, x + (<usize>g << 6), SCRATCH_L + (<usize>g << 4));
      store<f32>(SCRATCH_SCALES + (<usize>g << 2), scale);
      if (Mathf.abs(scale) > amax) {
        amax = Mathf.abs(scale);
        maxScale = scale;
      }
    }
    memory.fill(o, 0, BYTES);
    const sb = o + 96;
    if (maxScale != 0) {
      const iscale: f32 = <f32>-32.0 / maxScale;
      for (let g = 0; g < 16; g++) {
        const l = clampI(<i32><i8>nearestInt(iscale * load<f32>(SCRATCH_SCALES + (<usize>g << 2))), -32, 31) + 32;
        if (g < 8) store<u8>(sb + <usize>g, <u8>(l & 15));
        else store<u8>(sb + <usize>(g - 8), load<u8>(sb + <usize>(g - 8)) | <u8>((l & 15) << 4));
        const at = sb + 8 + <usize>(g & 3);
        store<u8>(at, load<u8>(at) | <u8>((l >> 4) << (2 * (g >> 2))));
      }
      store<u16>(o + 108, <u16>f32ToF16(<f32>1.0 / iscale));
    }
    const d = loadF16(o + 108);
    for (let g = 0; g < 16; g++) {
      const dl: f32 = d * <f32>(scaleQ3K(g, sb) - 32);
      if (dl == 0) continue;
      for (let i = 16 * g; i < 16 * g + 16; i++) {
        store<u8>(SCRATCH_L + <usize>i, <u8>(clampI(nearestInt(load<f32>(x + (<usize>i << 2)) / dl), -4, 3) + 4));
      }
    }
    for (let v = 0; v < 256; v++) {
      const p = SCRATCH_L + <usize>v;
      if (load<u8>(p) > 3) {
        const at = o + <usize>(v & 31);
        store<u8>(at, <u8>(<u32>load<u8>(at) | (<u32>1 << <u32>(v >> 5))));
        store<u8>(p, <u8>(load<u8>(p) - 4));
      }
    }
    pack2Bit(o + 32);
  }
}

/** The integers of the super-block at wb against the q8_K block at xb (kquants.ts's intsOf). */
// @ts-ignore: decorator
@final class Q3KInts {
  // @ts-ignore: decorator
  @inline ints(wb: usize, xb: usize): v128 {
    return superBlockIntsK(Q3_K, wb, xb);
  }
}

export function dequantizeRow_q3_K(src: usize, dst: usize, n: i32): void {
  dequantizeK(Q3_K, src, dst, n);
}

/** Σ over super-blocks of (d_x × d) × isum [− (d_x × dmin) × summs], in f32 (kquants.ts). */
export function dot_q3_K(row: usize, x: usize, n: i32): f32 {
  return rowDotK<Q3KInts>(Q3_K, row, x, n >> 8);
}

/** out[i] += w × value[i]; the value is rounded to f32 first, as dequantizeRow does. */
export function axpy_q3_K(out: usize, w: f32, row: usize, n: i32): void {
  axpyK(Q3_K, out, w, row, n);
}

/** out[t][r] = dot(W[r], X[t]): W (rows, cols) q3_K, X (nTokens, xStride bytes) q8_K, out (nTokens, outStride bytes) f32. */
export function matmul_q3_K(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  matmulK<Q3KInts>(Q3_K, w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride);
}

/** out[r] = dot(W[r], x) for r in [rowStart, rowEnd): matmul_q3_K with one token, bit for bit (kquants.ts's matvecK). */
export function matvec_q3_K(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  matvecK<Q3KInts>(Q3_K, w, x, out, rowStart, rowEnd, cols);
}
