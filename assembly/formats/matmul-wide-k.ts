// Batched products of K-quant weights (q2_K .. q6_K; q8_K partner) over weight rows decoded once per batch: each
// thread widens a weight row into its scratch once, then dots it with every token of the batch (two rows × four
// tokens per pass), where matmul_<fmt> decodes the packed row again for every token.
//
// Wide K row layout: (nb, WIDE_K_BLOCK_BYTES), one entry per super-block:
//   [0, 512)    i16 × 256: scale_g × level_i for the values in order (g = i / 16; |scale × level| ≤ 32 × 128 = 4096)
//   [512, 544)  i16 × 16: min_g (zeros for formats without mins: q3_K, q6_K)
//   [544, 548)  f32 d;  [548, 552) f32 dmin (0 without mins);  [552, 560) padding
// With the scales folded into the levels, a super-block's isum = Σ_g scale_g × Σ level × q8 is one straight i16 dot
// over 256 values (|isum| < 2^28: exact in i32), and summs = Σ_g min_g × bsum_g one 16-lane dot with the q8_K block's
// group sums. Both are the exact integers of kquants.ts's row dots, and the super-block term and the row's sum follow
// its f32 order, so matmulWide_<fmt> equals matvec_<fmt> token by token, bit for bit.
import { loadF16, sum4I32x4 } from "./common";
import {
  Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K_BYTES, blockBytesK, dOffset, dminOffset, hasMinK, hsumI32x4K, levels16, min16, scale16,
} from "./kquants";

/** Bytes of one widened super-block. */
export const WIDE_K_BLOCK_BYTES: usize = 560;
const MINS: usize = 512;
const D: usize = 544;
const DMIN: usize = 548;

/** The K-quant row of nb super-blocks at src (format fmt) in the wide K layout at dst. */
// @ts-ignore: decorator
@inline function widenRowK(fmt: i32, src: usize, nb: i32, dst: usize): void {
  const B = blockBytesK(fmt);
  for (let b = 0; b < nb; b++) {
    const wb = src + <usize>b * B;
    const o = dst + <usize>b * WIDE_K_BLOCK_BYTES;
    for (let g = 0; g < 16; g++) {
      const levels = levels16(fmt, wb, g);
      const scale = i16x8.splat(<i16>scale16(fmt, wb, g));
      const p = o + (<usize>g << 5);
      v128.store(p, i16x8.mul(i16x8.extend_low_i8x16_s(levels), scale));
      v128.store(p, i16x8.mul(i16x8.extend_high_i8x16_s(levels), scale), 16);
      store<i16>(o + MINS + (<usize>g << 1), hasMinK(fmt) ? <i16>min16(fmt, wb, g) : 0);
    }
    store<f32>(o + D, loadF16(wb + dOffset(fmt)));
    store<f32>(o + DMIN, hasMinK(fmt) ? loadF16(wb + dminOffset(fmt)) : 0);
  }
}

/** The f32 term of the wide super-block at wo with the q8_K block at xb, given the lanes of its isum: kquants.ts's formula. */
// @ts-ignore: decorator
@inline function blockTerm(fmt: i32, wo: usize, xb: usize, isumLanes: v128): f32 {
  const dx = load<f32>(xb);
  const scaled: f32 = (dx * load<f32>(wo + D)) * <f32>hsumI32x4K(isumLanes);
  if (!hasMinK(fmt)) return scaled;
  const bsums = xb + 4 + 256;
  const mins = i32x4.add(
    i32x4.dot_i16x8_s(v128.load(wo + MINS), v128.load(bsums)),
    i32x4.dot_i16x8_s(v128.load(wo + MINS, 16), v128.load(bsums, 16)),
  );
  return scaled - (dx * load<f32>(wo + DMIN)) * <f32>hsumI32x4K(mins);
}

/**
 * The f32 terms of the wide super-block at wo with four q8_K blocks (xb + j·xs, j = lane), given each one's isum
 * lanes (sj): blockTerm's formula with the four tokens in four lanes, each lane the same f32 operations.
 */
// @ts-ignore: decorator
@inline function blockTerms4(fmt: i32, wo: usize, xb: usize, xs: usize, s0: v128, s1: v128, s2: v128, s3: v128): v128 {
  let dx = f32x4.splat(load<f32>(xb));
  dx = f32x4.replace_lane(dx, 1, load<f32>(xb + xs));
  dx = f32x4.replace_lane(dx, 2, load<f32>(xb + 2 * xs));
  dx = f32x4.replace_lane(dx, 3, load<f32>(xb + 3 * xs));
  const scaled = f32x4.mul(f32x4.mul(dx, f32x4.splat(load<f32>(wo + D))), f32x4.convert_i32x4_s(sum4I32x4(s0, s1, s2, s3)));
  if (!hasMinK(fmt)) return scaled;
  const m0 = v128.load(wo + MINS);
  const m1 = v128.load(wo + MINS, 16);
  const bsums = xb + 4 + 256;
  const summs = sum4I32x4(
    i32x4.add(i32x4.dot_i16x8_s(m0, v128.load(bsums)), i32x4.dot_i16x8_s(m1, v128.load(bsums, 16))),
    i32x4.add(i32x4.dot_i16x8_s(m0, v128.load(bsums + xs)), i32x4.dot_i16x8_s(m1, v128.load(bsums + xs, 16))),
    i32x4.add(i32x4.dot_i16x8_s(m0, v128.load(bsums + 2 * xs)), i32x4.dot_i16x8_s(m1, v128.load(bsums + 2 * xs, 16))),
    i32x4.add(i32x4.dot_i16x8_s(m0, v128.load(bsums + 3 * xs)), i32x4.dot_i16x8_s(m1, v128.load(bsums + 3 * xs, 16))),
  );
  return f32x4.sub(scaled, f32x4.mul(f32x4.mul(dx, f32x4.splat(load<f32>(wo + DMIN))), f32x4.convert_i32x4_s(summs)));
}

/**
 * Dots of wide rows wa, wb with the q8_K rows x, x + xs, x + 2·xs, x + 3·xs (nb super-blocks); row wa (wb) with
 * token j is stored at oa (ob) + j·os. One 8-value step per iteration (more unrolling makes V8 spill).
 */
// @ts-ignore: decorator
@inline function tile2x4(fmt: i32, wa: usize, wb: usize, x: usize, xs: usize, nb: i32, oa: usize, ob: usize, os: usize): void {
  let fA = f32x4.splat(0); // lanes: tokens 0..3 of row wa
  let fB = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const pa = wa + <usize>b * WIDE_K_BLOCK_BYTES;
    const pb = wb + <usize>b * WIDE_K_BLOCK_BYTES;
    const xb = x + <usize>b * Q8_K_BYTES;
    let sA0 = i32x4.splat(0), sA1 = i32x4.splat(0), sA2 = i32x4.splat(0), sA3 = i32x4.splat(0);
    let sB0 = i32x4.splat(0), sB1 = i32x4.splat(0), sB2 = i32x4.splat(0), sB3 = i32x4.splat(0);
    for (let i: usize = 0; i < 256; i += 8) {
      const a = v128.load(pa + (i << 1));
      const c = v128.load(pb + (i << 1));
      const q = xb + 4 + i;
      const x0 = v128.load8x8_s(q);
      sA0 = i32x4.add(sA0, i32x4.dot_i16x8_s(a, x0));
      sB0 = i32x4.add(sB0, i32x4.dot_i16x8_s(c, x0));
      const x1 = v128.load8x8_s(q + xs);
      sA1 = i32x4.add(sA1, i32x4.dot_i16x8_s(a, x1));
      sB1 = i32x4.add(sB1, i32x4.dot_i16x8_s(c, x1));
      const x2 = v128.load8x8_s(q + 2 * xs);
      sA2 = i32x4.add(sA2, i32x4.dot_i16x8_s(a, x2));
      sB2 = i32x4.add(sB2, i32x4.dot_i16x8_s(c, x2));
      const x3 = v128.load8x8_s(q + 3 * xs);
      sA3 = i32x4.add(sA3, i32x4.dot_i16x8_s(a, x3));
      sB3 = i32x4.add(sB3, i32x4.dot_i16x8_s(c, x3));
    }
    fA = f32x4.add(fA, blockTerms4(fmt, pa, xb, xs, sA0, sA1, sA2, sA3));
    fB = f32x4.add(fB, blockTerms4(fmt, pb, xb, xs, sB0, sB1, sB2, sB3));
  }
  store<f32>(oa, f32x4.extract_lane(fA, 0));
  store<f32>(oa + os, f32x4.extract_lane(fA, 1));
  store<f32>(oa + 2 * os, f32x4.extract_lane(fA, 2));
  store<f32>(oa + 3 * os, f32x4.extract_lane(fA, 3));
  store<f32>(ob, f32x4.extract_lane(fB, 0));
  store<f32>(ob + os, f32x4.extract_lane(fB, 1));
  store<f32>(ob + 2 * os, f32x4.extract_lane(fB, 2));
  store<f32>(ob + 3 * os, f32x4.extract_lane(fB, 3));
}

/** Dot of the wide row w with the q8_K row x (nb super-blocks), for the rows and tokens a 2 × 4 tile leaves over. */
// @ts-ignore: decorator
@inline function dot1x1(fmt: i32, w: usize, x: usize, nb: i32): f32 {
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const p = w + <usize>b * WIDE_K_BLOCK_BYTES;
    const xb = x + <usize>b * Q8_K_BYTES;
    let s0 = i32x4.splat(0);
    let s1 = i32x4.splat(0);
    for (let i: usize = 0; i < 256; i += 16) {
      s0 = i32x4.add(s0, i32x4.dot_i16x8_s(v128.load(p + (i << 1)), v128.load8x8_s(xb + 4 + i)));
      s1 = i32x4.add(s1, i32x4.dot_i16x8_s(v128.load(p + (i << 1), 16), v128.load8x8_s(xb + 12 + i)));
    }
    sum += blockTerm(fmt, p, xb, i32x4.add(s0, s1));
  }
  return sum;
}

/**
 * out[t][r] = dot(W[r], X[t]) for rows [rowStart, rowEnd) and tokens [0, nTokens): W (rows, cols) in K-quant `fmt`,
 * X (nTokens, cols / 256 × 292 bytes) q8_K, out (nTokens, outStride bytes) f32; scratch: this thread's
 * 2 × (cols / 256) × WIDE_K_BLOCK_BYTES bytes.
 */
// @ts-ignore: decorator
@inline function matmulWideK(
  fmt: i32, w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, outStride: i32, scratch: usize,
): void {
  const nb = cols >> 8;
  const rowBytes = <usize>nb * blockBytesK(fmt);
  const xs = <usize>nb * Q8_K_BYTES;
  const os = <usize>outStride;
  const wideA = scratch;
  const wideB = scratch + <usize>nb * WIDE_K_BLOCK_BYTES;
  let r = rowStart;
  for (; r + 2 <= rowEnd; r += 2) {
    widenRowK(fmt, w + <usize>r * rowBytes, nb, wideA);
    widenRowK(fmt, w + <usize>(r + 1) * rowBytes, nb, wideB);
    const oa = out + (<usize>r << 2);
    let t = 0;
    for (; t + 4 <= nTokens; t += 4) tile2x4(fmt, wideA, wideB, x + <usize>t * xs, xs, nb, oa + <usize>t * os, oa + 4 + <usize>t * os, os);
    for (; t < nTokens; t++) {
      const xt = x + <usize>t * xs;
      store<f32>(oa + <usize>t * os, dot1x1(fmt, wideA, xt, nb));
      store<f32>(oa + 4 + <usize>t * os, dot1x1(fmt, wideB, xt, nb));
    }
  }
  if (r < rowEnd) {
    widenRowK(fmt, w + <usize>r * rowBytes, nb, wideA);
    const o = out + (<usize>r << 2);
    for (let t = 0; t < nTokens; t++) store<f32>(o + <usize>t * os, dot1x1(fmt, wideA, x + <usize>t * xs, nb));
  }
}

// One export per format: the argument list of matmulWide_q8_0 (matmul-wide.ts), so src/model/linear.ts drives both alike.
export function matmulWide_q2_K(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, outStride: i32, scratch: usize): void {
  matmulWideK(Q2_K, w, x, out, rowStart, rowEnd, cols, nTokens, outStride, scratch);
}
export function matmulWide_q3_K(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, outStride: i32, scratch: usize): void {
  matmulWideK(Q3_K, w, x, out, rowStart, rowEnd, cols, nTokens, outStride, scratch);
}
export function matmulWide_q4_K(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, outStride: i32, scratch: usize): void {
  matmulWideK(Q4_K, w, x, out, rowStart, rowEnd, cols, nTokens, outStride, scratch);
}
export function matmulWide_q5_K(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, outStride: i32, scratch: usize): void {
  matmulWideK(Q5_K, w, x, out, rowStart, rowEnd, cols, nTokens, outStride, scratch);
}
export function matmulWide_q6_K(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, outStride: i32, scratch: usize): void {
  matmulWideK(Q6_K, w, x, out, rowStart, rowEnd, cols, nTokens, outStride, scratch);
}
