// q4_K kernels: 256-value super-blocks of 144 bytes (fp16 d, fp16 dmin, 12 B 6-bit scales/mins, 128 B nibbles);
// the dot partner is q8_K (see src/formats/reference/q4_K.ts). The quantizer is single-threaded (kquants.ts).
import { U8_15, highNibbles, u8const } from "./common";
import {
  KQ_I16_15, Q4_K, SCRATCH_L, axpyK, dequantizeK, intsK4, kqconst, matmulK, matvecK, pairHalvesI32x4,
  quantizeScaleMinK4, relaxedChunkSumsK4, rowDotK, settledK,
} from "./kquants";

const BYTES: usize = 144;

// ---- dot: the order of kquants.ts's file comment, per super-block ---------------------------------------------
// isum = Σ_j scale_j × Σ_{32 values of sub-block j} level × q8 (levels 0..15 as i16, i32x4.dot_i16x8_s; relaxed
// build: as u8 in i32x4.relaxed_dot_i8x16_i7x16_add_s), summs = Σ_j min_j × (bsum_2j + bsum_2j+1); both exact
// integers, so any grouping gives kquants.ts's values.

/** Σ level × q8 over values 8k..8k+7 of sub-block 2c (low nibbles; lowPart) or 2c + 1 (high; highPart); wq: chunk c's 32 nibble bytes. */
// @ts-ignore: decorator
@inline function lowPart(wq: usize, xq: usize, k: usize): v128 {
  return i32x4.dot_i16x8_s(v128.and(v128.load8x8_u(wq + (k << 3)), kqconst(KQ_I16_15)), v128.load8x8_s(xq + (k << 3)));
}
// @ts-ignore: decorator
@inline function highPart(wq: usize, xq: usize, k: usize): v128 {
  return i32x4.dot_i16x8_s(i16x8.shr_u(v128.load8x8_u(wq + (k << 3)), 4), v128.load8x8_s(xq + 32 + (k << 3)));
}

/**
 * Chunk c (64 values: sub-blocks 2c, 2c + 1) with the q8 values at xq: pairHalvesI32x4(Σ sub-block 2c, Σ sub-block
 * 2c + 1). Relaxed build: the 32 nibble bytes as two u8x16 (low nibbles: sub-block 2c, high: 2c + 1), four relaxed
 * dots of 16 values each (relaxedChunkSumsK4).
 */
// @ts-ignore: decorator
@inline function chunkSums(wq: usize, xq: usize): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    const b0 = v128.load(wq); // (16) u8: nibbles of values 0-15 of sub-block 2c (low) and 2c + 1 (high)
    const b1 = v128.load(wq, 16); // values 16-31
    const low15 = u8const(U8_15);
    return relaxedChunkSumsK4(v128.and(b0, low15), v128.and(b1, low15), highNibbles(b0), highNibbles(b1), xq);
  }
  const lo = settledK(i32x4.add(i32x4.add(lowPart(wq, xq, 0), lowPart(wq, xq, 1)), i32x4.add(lowPart(wq, xq, 2), lowPart(wq, xq, 3))), xq);
  const hi = i32x4.add(i32x4.add(highPart(wq, xq, 0), highPart(wq, xq, 1)), i32x4.add(highPart(wq, xq, 2), highPart(wq, xq, 3)));
  return pairHalvesI32x4(lo, hi);
}

/** The integers of the super-block at wb against the q8_K block at xb (kquants.ts's intsOf). */
// @ts-ignore: decorator
@final class Q4KInts {
  // @ts-ignore: decorator
  @inline ints(wb: usize, xb: usize): v128 {
    const wq = wb + 16;
    const xq = xb + 4;
    const c0 = settledK(chunkSums(wq, xq), xb);
    const c1 = settledK(chunkSums(wq + 32, xq + 64), xb);
    const c2 = settledK(chunkSums(wq + 64, xq + 128), xb);
    const c3 = settledK(chunkSums(wq + 96, xq + 192), xb);
    return intsK4(wb, xb, c0, c1, c2, c3);
  }
}

export function quantizeRow_q4_K(src: usize, dst: usize, n: i32): void {
  const nb = n >> 8;
  for (let b = 0; b < nb; b++) {
    const x = src + (<usize>b << 10);
    const o = dst + <usize>b * BYTES;
    quantizeScaleMinK4(x, 15, -1, 20, o); // header bytes 0..15, levels into SCRATCH_L
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
  return rowDotK<Q4KInts>(Q4_K, row, x, n >> 8);
}

/** out[i] += w × value[i]; the value is rounded to f32 first, as dequantizeRow does. */
export function axpy_q4_K(out: usize, w: f32, row: usize, n: i32): void {
  axpyK(Q4_K, out, w, row, n);
}

/** out[t][r] = dot(W[r], X[t]): W (rows, cols) q4_K, X (nTokens, xStride bytes) q8_K, out (nTokens, outStride bytes) f32. */
export function matmul_q4_K(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  matmulK<Q4KInts>(Q4_K, w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride);
}

/** out[r] = dot(W[r], x) for r in [rowStart, rowEnd): matmul_q4_K with one token, bit for bit (kquants.ts's matvecK). */
export function matvec_q4_K(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  matvecK<Q4KInts>(Q4_K, w, x, out, rowStart, rowEnd, cols);
}
