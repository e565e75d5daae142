// q5_K kernels: 256-value super-blocks of 176 bytes (fp16 d, fp16 dmin, 12 B 6-bit scales/mins, 32 B high bits,
// 128 B nibbles); the dot partner is q8_K (see src/formats/reference/q5_K.ts). The quantizer is single-threaded.
import { U8_15, U8_16, highNibbles, u8const } from "./common";
import {
  KQ_I16_15, Q5_K, SCRATCH_L, axpyK, dequantizeK, intsK4, kqconst, matmulK, matvecK,
  pairHalvesI32x4, quantizeScaleMinK4, relaxedChunkSumsK4, rowDotK, settledK,
} from "./kquants";

const BYTES: usize = 176;

// ---- dot: the order of kquants.ts's file comment, per super-block ---------------------------------------------
// As q4_K.ts's dot, with level = nibble | 16 × high bit (levels 0..31 as i16): isum = Σ_j scale_j × Σ_{32 values of
// sub-block j} level × q8 (relaxed build: levels as u8 in relaxed dots), summs = Σ_j min_j × (bsum_2j + bsum_2j+1);
// both exact integers, so any grouping gives kquants.ts's values. Value l of sub-block j has its high bit at bit j of
// qh byte l (l = 0..31).

/** i16 lanes of 16, the high bit's place in a level. */
const I16_16: usize = memory.data<u8>([16, 0, 16, 0, 16, 0, 16, 0, 16, 0, 16, 0, 16, 0, 16, 0], 16);

/** 16 × bit j of the 8 qh bytes in h (u16 lanes), j = 0..7 a constant. */
// @ts-ignore: decorator
@inline function highBit16(h: v128, j: i32): v128 {
  const placed = j < 4 ? i16x8.shl(h, 4 - j) : j == 4 ? h : i16x8.shr_u(h, j - 4);
  return v128.and(placed, v128.load(I16_16));
}

/** Σ level × q8 over values 8k..8k+7 of sub-block 2c (low nibbles; lowPart) or 2c + 1 (high; highPart); wq: chunk c's
 * 32 nibble bytes, h: qh bytes 8k..8k+7 as u16 lanes. */
// @ts-ignore: decorator
@inline function lowPart(wq: usize, h: v128, xq: usize, c: i32, k: usize): v128 {
  const level = v128.or(v128.and(v128.load8x8_u(wq + (k << 3)), kqconst(KQ_I16_15)), highBit16(h, 2 * c));
  return i32x4.dot_i16x8_s(level, v128.load8x8_s(xq + (k << 3)));
}
// @ts-ignore: decorator
@inline function highPart(wq: usize, h: v128, xq: usize, c: i32, k: usize): v128 {
  const level = v128.or(i16x8.shr_u(v128.load8x8_u(wq + (k << 3)), 4), highBit16(h, 2 * c + 1));
  return i32x4.dot_i16x8_s(level, v128.load8x8_s(xq + 32 + (k << 3)));
}

/** 16 × bit j of the bytes in h (u8 lanes), j = 0..7 a constant: highBit16 on 16 bytes at once. */
// @ts-ignore: decorator
@inline function highBit8(h: v128, j: i32): v128 {
  const placed = j < 4 ? i16x8.shl(h, 4 - j) : j == 4 ? h : i16x8.shr_u(h, j - 4);
  return v128.and(placed, u8const(U8_16));
}

/**
 * Chunk c (64 values: sub-blocks 2c, 2c + 1) with the q8 values at xq: pairHalvesI32x4(Σ sub-block 2c, Σ sub-block
 * 2c + 1). Relaxed build: levels 0..31 as u8x16 (nibble | 16 × high bit), four relaxed dots of 16 values each
 * (relaxedChunkSumsK4).
 */
// @ts-ignore: decorator
@inline function chunkSums(wq: usize, qh: usize, xq: usize, c: i32): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    const b0 = v128.load(wq); // (16) u8: nibbles of values 0-15 of sub-block 2c (low) and 2c + 1 (high)
    const b1 = v128.load(wq, 16); // values 16-31
    const h0 = v128.load(qh); // (16) u8: qh bytes 0-15, the high bits of values 0-15 of every sub-block
    const h1 = v128.load(qh, 16); // qh bytes 16-31
    const low15 = u8const(U8_15);
    return relaxedChunkSumsK4(
      v128.or(v128.and(b0, low15), highBit8(h0, 2 * c)), v128.or(v128.and(b1, low15), highBit8(h1, 2 * c)),
      v128.or(highNibbles(b0), highBit8(h0, 2 * c + 1)), v128.or(highNibbles(b1), highBit8(h1, 2 * c + 1)), xq,
    );
  }
  // (4, 8) u16: qh bytes 0-31, shared by both sub-blocks (each takes its own bit)
  const h0 = v128.load8x8_u(qh);
  const h1 = v128.load8x8_u(qh + 8);
  const h2 = v128.load8x8_u(qh + 16);
  const h3 = v128.load8x8_u(qh + 24);
  const lo = settledK(i32x4.add(
    i32x4.add(lowPart(wq, h0, xq, c, 0), lowPart(wq, h1, xq, c, 1)),
    i32x4.add(lowPart(wq, h2, xq, c, 2), lowPart(wq, h3, xq, c, 3)),
  ), xq);
  const hi = i32x4.add(
    i32x4.add(highPart(wq, h0, xq, c, 0), highPart(wq, h1, xq, c, 1)),
    i32x4.add(highPart(wq, h2, xq, c, 2), highPart(wq, h3, xq, c, 3)),
  );
  return pairHalvesI32x4(lo, hi);
}

/** The integers of the super-block at wb against the q8_K block at xb (kquants.ts's intsOf). */
// @ts-ignore: decorator
@final class Q5KInts {
  // @ts-ignore: decorator
  @inline ints(wb: usize, xb: usize): v128 {
    const qh = wb + 16;
    const wq = wb + 48;
    const xq = xb + 4;
    const c0 = settledK(chunkSums(wq, qh, xq, 0), xb);
    const c1 = settledK(chunkSums(wq + 32, qh, xq + 64, 1), xb);
    const c2 = settledK(chunkSums(wq + 64, qh, xq + 128, 2), xb);
    const c3 = settledK(chunkSums(wq + 96, qh, xq + 192, 3), xb);
    return intsK4(wb, xb, c0, c1, c2, c3);
  }
}

export function quantizeRow_q5_K(src: usize, dst: usize, n: i32): void {
  const nb = n >> 8;
  for (let b = 0; b < nb; b++) {
    const x = src + (<usize>b << 10);
    const o = dst + <usize>b * BYTES;
    quantizeScaleMinK4(x, 31, -0.5, 15, o); // header bytes 0..15, levels into SCRATCH_L
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
  return rowDotK<Q5KInts>(Q5_K, row, x, n >> 8);
}

/** out[i] += w × value[i]; the value is rounded to f32 first, as dequantizeRow does. */
export function axpy_q5_K(out: usize, w: f32, row: usize, n: i32): void {
  axpyK(Q5_K, out, w, row, n);
}

/** out[t][r] = dot(W[r], X[t]): W (rows, cols) q5_K, X (nTokens, xStride bytes) q8_K, out (nTokens, outStride bytes) f32. */
export function matmul_q5_K(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  matmulK<Q5KInts>(Q5_K, w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride);
}

/** out[r] = dot(W[r], x) for r in [rowStart, rowEnd): matmul_q5_K with one token, bit for bit (kquants.ts's matvecK). */
export function matvec_q5_K(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  matvecK<Q5KInts>(Q5_K, w, x, out, rowStart, rowEnd, cols);
}
