// Batched products of K-quant weights (q2_K .. q6_K; q8_K partner) over weight rows decoded once per batch: each
// thread widens a weight row into its scratch once, then dots it with every token of the batch (two rows × four
// tokens per pass), where matmul_<fmt> decodes the packed row again for every token.
//
// Quad order: a super-block's 256 values as four quads of four 16-value groups (quad q: groups 4q .. 4q + 3, values
// 64q .. 64q + 63), each quad's 64 values stored as four vectors of 16 whose i32 lane j in vector m holds values
// 4m .. 4m + 3 of group 4q + j (the 4 × 4 transpose of the quad's (group, four values) lanes). The widened weights
// and the batch's activations (quantizeRowsWide_q8_K) are both in quad order, so a dot over a quad sums the same
// products as over the values in order. In the relaxed build a quad is four i16x8.relaxed_dot_i8x16_i7x16_s (pairs of
// products, stored levels 0..63 as the i7 operand: exact, see common.ts) added in i16 (|sum| ≤ 8 × 31 × 128 < 2^15;
// q6_K's levels to 63 add two at a time), then one i32x4.dot_i16x8_s with the scales in pairs: group 4q + j's
// Σ scale × level × q8 lands in lane j. (A chain of four i32x4.relaxed_dot_i8x16_i7x16_add_s and one i32x4.mul was
// measured as fast on AVX-VNNI hardware and 1.5× slower on x86 without it, where a dot-add is five instructions.)
//
// Wide K row layout: (nb, WIDE_K_BLOCK_BYTES), one entry per super-block, values in quad order:
//   plain build:
//     [0, 512)    i16 × 256: scale_g × level_i (g: the value's group; |scale × level| ≤ 32 × 128 = 4096)
//   relaxed build (kernels-relaxed.wasm):
//     [0, 256)    u8 × 256: the stored levels (storedLevels16: 0..63, level + levelOffsetK)
//     [256, 320)  (4) i16x8: quad q's four group scales, scale_{4q + j} in lanes 2j, 2j + 1
//   both:
//     [512, 544)  i16 × 16 (COEFFS): the coefficient of the q8_K group sum bsum_g: min_g (q2_K, q4_K, q5_K); for
//                 q3_K / q6_K levelOffsetK × scale_g in the relaxed build (their stored levels carry the offset), 0 in
//                 the plain build
//     [544, 548)  f32 d;  [548, 552) f32 dmin (0 without mins);  [552, 560) padding
// Wide q8_K (quantizeRowsWide_q8_K): q8_K rows (292 bytes a super-block: f32 d, 256 i8, 16 i16 group sums) with
// the 256 values in quad order.
//
// isum = Σ_g scale_g × Σ level × q8 is exact in i32 either way (|isum| < 2^28), and q3_K / q6_K subtract their offset
// term Σ_g (offset × scale_g) × bsum_g in the relaxed build; summs = Σ_g min_g × bsum_g is one 16-lane dot with the
// q8_K block's group sums. All are the exact integers of kquants.ts's row dots, and the super-block term and the
// row's sum follow its f32 order, so matmulWide_<fmt> equals matvec_<fmt> token by token, bit for bit, in either
// build.
import { AS_VALUES, loadF16, lookup16, pairDotLevels, storeTransposedI32x4, sum4I32x4 } from "./common";
import {
  Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K_BYTES, blockBytesK, dOffset, dminOffset, hasMinK, hsumI32x4K, levelOffsetK, levels16,
  quantizeQ8KBlock, scale16, scalesMinsK4, storedLevels16,
} from "./kquants";

/** Bytes of one widened super-block. */
export const WIDE_K_BLOCK_BYTES: usize = 560;
const SCALES: usize = 256; // relaxed build only
const COEFFS: usize = 512;
const D: usize = 544;
const DMIN: usize = 548;

/** Whether COEFFS holds offset × scale (q3_K / q6_K in the relaxed build): that term is subtracted from isum. */
// @ts-ignore: decorator
@inline function offsetInCoeffs(fmt: i32): bool {
  return ASC_FEATURE_RELAXED_SIMD && levelOffsetK(fmt) != 0;
}

/** Byte indices for i8x16.swizzle: lanes 2j, 2j + 1 take lane j (j = 0..3); add 4q for quad q's groups. */
const PAIR_INDICES: usize = memory.data<u8>([0, 0, 1, 1, 2, 2, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0], 16);

/**
 * Quad q's four group scales from the super-block's 16 (i8x16, lane g) as i16x8, group 4q + j's in lanes 2j and
 * 2j + 1: the relaxed layout's scale row, and as i32 lanes the source of the plain layout's per-value scales.
 */
// @ts-ignore: decorator
@inline function quadScalePairs(scales: v128, q: i32): v128 {
  return i16x8.extend_low_i8x16_s(lookup16(scales, i8x16.add(v128.load(PAIR_INDICES), i8x16.splat(<i8>(q << 2)))));
}

/** The 16 group scales of the super-block at wb, lane g: scale16(fmt, wb, g) (−32..31 for q3_K, i8 for q6_K). */
// @ts-ignore: decorator
@inline function groupScales(fmt: i32, wb: usize): v128 {
  if (fmt == Q2_K) return v128.and(v128.load(wb), i8x16.splat(15));
  if (fmt == Q6_K) return v128.load(wb + 192);
  if (fmt == Q4_K || fmt == Q5_K) {
    const sm = scalesMinsK4(wb + 4); // u8 lanes 0-7: the eight sub-block scales (a sub-block is two groups)
    return i8x16.shuffle(sm, sm, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  }
  // q3_K: its 6-bit scales are packed across bytes in a way no lane-wise shift undoes
  let v = i8x16.splat(<i8>scale16(fmt, wb, 0));
  v = i8x16.replace_lane(v, 1, <i8>scale16(fmt, wb, 1));
  v = i8x16.replace_lane(v, 2, <i8>scale16(fmt, wb, 2));
  v = i8x16.replace_lane(v, 3, <i8>scale16(fmt, wb, 3));
  v = i8x16.replace_lane(v, 4, <i8>scale16(fmt, wb, 4));
  v = i8x16.replace_lane(v, 5, <i8>scale16(fmt, wb, 5));
  v = i8x16.replace_lane(v, 6, <i8>scale16(fmt, wb, 6));
  v = i8x16.replace_lane(v, 7, <i8>scale16(fmt, wb, 7));
  v = i8x16.replace_lane(v, 8, <i8>scale16(fmt, wb, 8));
  v = i8x16.replace_lane(v, 9, <i8>scale16(fmt, wb, 9));
  v = i8x16.replace_lane(v, 10, <i8>scale16(fmt, wb, 10));
  v = i8x16.replace_lane(v, 11, <i8>scale16(fmt, wb, 11));
  v = i8x16.replace_lane(v, 12, <i8>scale16(fmt, wb, 12));
  v = i8x16.replace_lane(v, 13, <i8>scale16(fmt, wb, 13));
  v = i8x16.replace_lane(v, 14, <i8>scale16(fmt, wb, 14));
  return i8x16.replace_lane(v, 15, <i8>scale16(fmt, wb, 15));
}

/** The 16 group mins of the super-block at wb, u8 lane g: min16(fmt, wb, g) (q2_K, q4_K, q5_K). */
// @ts-ignore: decorator
@inline function groupMins(fmt: i32, wb: usize): v128 {
  if (fmt == Q2_K) return v128.and(i16x8.shr_u(v128.load(wb), 4), i8x16.splat(15));
  const sm = scalesMinsK4(wb + 4); // u8 lanes 8-15: the eight sub-block mins
  return i8x16.shuffle(sm, sm, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
}

/** The K-quant row of nb super-blocks at src (format fmt) in the wide K layout at dst. */
// @ts-ignore: decorator
@inline function widenRowK(fmt: i32, src: usize, nb: i32, dst: usize): void {
  const B = blockBytesK(fmt);
  for (let b = 0; b < nb; b++) {
    const wb = src + <usize>b * B;
    const o = dst + <usize>b * WIDE_K_BLOCK_BYTES;
    const scales = groupScales(fmt, wb); // i8x16, lane g: group g's scale
    for (let q = 0; q < 4; q++) {
      const g = q << 2;
      if (ASC_FEATURE_RELAXED_SIMD) {
        const p = o + (<usize>q << 6);
        storeTransposedI32x4(AS_VALUES, p, storedLevels16(fmt, wb, g), storedLevels16(fmt, wb, g + 1), storedLevels16(fmt, wb, g + 2), storedLevels16(fmt, wb, g + 3));
        v128.store(o + SCALES + (<usize>q << 4), quadScalePairs(scales, q));
      } else {
        // the signed levels in quad order into the quad's upper 64 bytes, then each vector widened × its scales
        const p = o + (<usize>q << 7);
        storeTransposedI32x4(AS_VALUES, p + 64, levels16(fmt, wb, g), levels16(fmt, wb, g + 1), levels16(fmt, wb, g + 2), levels16(fmt, wb, g + 3));
        const t0 = v128.load(p, 64);
        const t1 = v128.load(p, 80);
        const t2 = v128.load(p, 96);
        const t3 = v128.load(p, 112);
        const pairs = quadScalePairs(scales, q);
        const low = i32x4.shuffle(pairs, pairs, 0, 0, 1, 1); // i16 lanes of a vector's values 0-7: groups g, g + 1
        const high = i32x4.shuffle(pairs, pairs, 2, 2, 3, 3); // values 8-15: groups g + 2, g + 3
        v128.store(p, i16x8.mul(i16x8.extend_low_i8x16_s(t0), low));
        v128.store(p, i16x8.mul(i16x8.extend_high_i8x16_s(t0), high), 16);
        v128.store(p, i16x8.mul(i16x8.extend_low_i8x16_s(t1), low), 32);
        v128.store(p, i16x8.mul(i16x8.extend_high_i8x16_s(t1), high), 48);
        v128.store(p, i16x8.mul(i16x8.extend_low_i8x16_s(t2), low), 64);
        v128.store(p, i16x8.mul(i16x8.extend_high_i8x16_s(t2), high), 80);
        v128.store(p, i16x8.mul(i16x8.extend_low_i8x16_s(t3), low), 96);
        v128.store(p, i16x8.mul(i16x8.extend_high_i8x16_s(t3), high), 112);
      }
    }
    // COEFFS: min_g, or levelOffsetK × scale_g, or 0, as i16 × 16
    let coeffs = i32x4.splat(0);
    if (hasMinK(fmt)) coeffs = groupMins(fmt, wb);
    if (offsetInCoeffs(fmt)) coeffs = scales;
    const offset = i16x8.splat(<i16>(offsetInCoeffs(fmt) ? levelOffsetK(fmt) : 1));
    v128.store(o + COEFFS, i16x8.mul(hasMinK(fmt) ? i16x8.extend_low_i8x16_u(coeffs) : i16x8.extend_low_i8x16_s(coeffs), offset));
    v128.store(o + COEFFS, i16x8.mul(hasMinK(fmt) ? i16x8.extend_high_i8x16_u(coeffs) : i16x8.extend_high_i8x16_s(coeffs), offset), 16);
    store<f32>(o + D, loadF16(wb + dOffset(fmt)));
    store<f32>(o + DMIN, hasMinK(fmt) ? loadF16(wb + dminOffset(fmt)) : 0);
  }
}

/**
 * Rows [rowStart, rowEnd) of f32 (nRows, cols) at src quantized to q8_K (quantizeRow_q8_K's blocks) at dst
 * ((nRows, cols / 256 × 292) bytes) with each super-block's values in quad order: the wide q8_K input of matmulWide_<K-quant>.
 */
export function quantizeRowsWide_q8_K(src: usize, dst: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  const nb = <usize>(cols >> 8);
  for (let r = rowStart; r < rowEnd; r++) {
    for (let b: usize = 0; b < nb; b++) {
      const xb = dst + (<usize>r * nb + b) * Q8_K_BYTES;
      quantizeQ8KBlock(src + ((<usize>r * nb + b) << 10), xb);
      for (let q: usize = 0; q < 4; q++) {
        const p = xb + 4 + (q << 6);
        storeTransposedI32x4(AS_VALUES, p, v128.load(p), v128.load(p, 16), v128.load(p, 32), v128.load(p, 48));
      }
    }
  }
}

/** Σ_g COEFFS_g × bsum_g of the wide super-block at wo and the q8_K block at xb, in four i32 lanes. */
// @ts-ignore: decorator
@inline function groupSums(wo: usize, xb: usize): v128 {
  const bsums = xb + 4 + 256;
  return i32x4.add(i32x4.dot_i16x8_s(v128.load(wo + COEFFS), v128.load(bsums)), i32x4.dot_i16x8_s(v128.load(wo + COEFFS, 16), v128.load(bsums, 16)));
}

/** groupSums of wo with the q8_K blocks at xb + j·xs in lane j (j = 0..3). */
// @ts-ignore: decorator
@inline function groupSums4(wo: usize, xb: usize, xs: usize): v128 {
  const m0 = v128.load(wo + COEFFS);
  const m1 = v128.load(wo + COEFFS, 16);
  const bsums = xb + 4 + 256;
  return sum4I32x4(
    i32x4.add(i32x4.dot_i16x8_s(m0, v128.load(bsums)), i32x4.dot_i16x8_s(m1, v128.load(bsums, 16))),
    i32x4.add(i32x4.dot_i16x8_s(m0, v128.load(bsums + xs)), i32x4.dot_i16x8_s(m1, v128.load(bsums + xs, 16))),
    i32x4.add(i32x4.dot_i16x8_s(m0, v128.load(bsums + 2 * xs)), i32x4.dot_i16x8_s(m1, v128.load(bsums + 2 * xs, 16))),
    i32x4.add(i32x4.dot_i16x8_s(m0, v128.load(bsums + 3 * xs)), i32x4.dot_i16x8_s(m1, v128.load(bsums + 3 * xs, 16))),
  );
}

/** The f32 term of the wide super-block at wo with the q8_K block at xb, given the lanes of its isum: kquants.ts's formula. */
// @ts-ignore: decorator
@inline function blockTerm(fmt: i32, wo: usize, xb: usize, isumLanes: v128): f32 {
  const dx = load<f32>(xb);
  const lanes = offsetInCoeffs(fmt) ? i32x4.sub(isumLanes, groupSums(wo, xb)) : isumLanes;
  const scaled: f32 = (dx * load<f32>(wo + D)) * <f32>hsumI32x4K(lanes);
  if (!hasMinK(fmt)) return scaled;
  return scaled - (dx * load<f32>(wo + DMIN)) * <f32>hsumI32x4K(groupSums(wo, xb));
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
  let isums = sum4I32x4(s0, s1, s2, s3);
  if (offsetInCoeffs(fmt)) isums = i32x4.sub(isums, groupSums4(wo, xb, xs));
  const scaled = f32x4.mul(f32x4.mul(dx, f32x4.splat(load<f32>(wo + D))), f32x4.convert_i32x4_s(isums));
  if (!hasMinK(fmt)) return scaled;
  return f32x4.sub(scaled, f32x4.mul(f32x4.mul(dx, f32x4.splat(load<f32>(wo + DMIN))), f32x4.convert_i32x4_s(groupSums4(wo, xb, xs))));
}

// ---- the inner step: the only code that differs between the builds ------------------------------------------

/**
 * Relaxed build: acc + Σ scale × level × q8 over one quad, its weights w0..w3 and activations x0..x3 in quad order
 * and its scales as the layout stores them, in four i32 lanes (lane j: group 4q + j; file comment).
 */
// @ts-ignore: decorator
@inline function quadDot(fmt: i32, acc: v128, scales: v128, w0: v128, w1: v128, w2: v128, w3: v128, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  // i16 lanes 2j, 2j + 1: pairs of products of group 4q + j; q6_K's levels (to 63) take two sums, the others one
  const pairs01 = i16x8.add(pairDotLevels(x0, w0), pairDotLevels(x1, w1));
  const pairs23 = i16x8.add(pairDotLevels(x2, w2), pairDotLevels(x3, w3));
  if (fmt == Q6_K) return i32x4.add(acc, i32x4.add(i32x4.dot_i16x8_s(pairs01, scales), i32x4.dot_i16x8_s(pairs23, scales)));
  return i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.add(pairs01, pairs23), scales));
}

/** Relaxed build: quadDot with the quad's activations at x. */
// @ts-ignore: decorator
@inline function quadDotX(fmt: i32, acc: v128, scales: v128, w0: v128, w1: v128, w2: v128, w3: v128, x: usize): v128 {
  return quadDot(fmt, acc, scales, w0, w1, w2, w3, v128.load(x), v128.load(x, 16), v128.load(x, 32), v128.load(x, 48));
}

/** Relaxed build: quadDot of the quad at byte i of the wide super-block at p with the wide q8_K values at q. */
// @ts-ignore: decorator
@inline function quadDotAt(fmt: i32, acc: v128, p: usize, i: usize, q: usize): v128 {
  const w = p + i;
  const x = q + i;
  return quadDot(
    fmt, acc, v128.load(p + SCALES + (i >> 2)),
    v128.load(w), v128.load(w, 16), v128.load(w, 32), v128.load(w, 48), v128.load(x), v128.load(x, 16), v128.load(x, 32), v128.load(x, 48),
  );
}

/** Plain build: acc + Σ scaled level × q8 over values i .. i + 7 (quad order) of the wide super-block at p and the wide q8_K values at q. */
// @ts-ignore: decorator
@inline function stepDot(acc: v128, p: usize, i: usize, q: usize): v128 {
  return i32x4.add(acc, i32x4.dot_i16x8_s(v128.load(p + (i << 1)), v128.load8x8_s(q + i)));
}

/**
 * Dots of wide rows wa, wb with the q8_K rows x, x + xs, x + 2·xs, x + 3·xs (nb super-blocks); row wa (wb) with
 * token j is stored at oa (ob) + j·os. One quad (relaxed build) or 8 values (plain) per iteration.
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
    const q = xb + 4;
    if (ASC_FEATURE_RELAXED_SIMD) {
      // one quad a pass: each weight vector loaded once for the four tokens, each token's once for the two rows
      for (let i: usize = 0; i < 256; i += 64) {
        const a0 = v128.load(pa + i), a1 = v128.load(pa + i, 16), a2 = v128.load(pa + i, 32), a3 = v128.load(pa + i, 48);
        const c0 = v128.load(pb + i), c1 = v128.load(pb + i, 16), c2 = v128.load(pb + i, 32), c3 = v128.load(pb + i, 48);
        const ka = v128.load(pa + SCALES + (i >> 2));
        const kc = v128.load(pb + SCALES + (i >> 2));
        const x = q + i;
        sA0 = quadDotX(fmt, sA0, ka, a0, a1, a2, a3, x);
        sB0 = quadDotX(fmt, sB0, kc, c0, c1, c2, c3, x);
        sA1 = quadDotX(fmt, sA1, ka, a0, a1, a2, a3, x + xs);
        sB1 = quadDotX(fmt, sB1, kc, c0, c1, c2, c3, x + xs);
        sA2 = quadDotX(fmt, sA2, ka, a0, a1, a2, a3, x + 2 * xs);
        sB2 = quadDotX(fmt, sB2, kc, c0, c1, c2, c3, x + 2 * xs);
        sA3 = quadDotX(fmt, sA3, ka, a0, a1, a2, a3, x + 3 * xs);
        sB3 = quadDotX(fmt, sB3, kc, c0, c1, c2, c3, x + 3 * xs);
      }
    } else {
      for (let i: usize = 0; i < 256; i += 8) {
        sA0 = stepDot(sA0, pa, i, q);
        sB0 = stepDot(sB0, pb, i, q);
        sA1 = stepDot(sA1, pa, i, q + xs);
        sB1 = stepDot(sB1, pb, i, q + xs);
        sA2 = stepDot(sA2, pa, i, q + 2 * xs);
        sB2 = stepDot(sB2, pb, i, q + 2 * xs);
        sA3 = stepDot(sA3, pa, i, q + 3 * xs);
        sB3 = stepDot(sB3, pb, i, q + 3 * xs);
      }
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
    if (ASC_FEATURE_RELAXED_SIMD) {
      s0 = quadDotAt(fmt, s0, p, 0, xb + 4);
      s1 = quadDotAt(fmt, s1, p, 64, xb + 4);
      s0 = quadDotAt(fmt, s0, p, 128, xb + 4);
      s1 = quadDotAt(fmt, s1, p, 192, xb + 4);
    } else {
      for (let i: usize = 0; i < 256; i += 16) {
        s0 = stepDot(s0, p, i, xb + 4);
        s1 = stepDot(s1, p, i + 8, xb + 4);
      }
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
