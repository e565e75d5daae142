// Row dot products shared by every format's matvec_<fmt> and matmul_<fmt> (not re-exported by index.ts).
//
// One rule per format fixes the floating-point order of a row's dot, whatever the tiling:
//   32-value block formats: per block the integer Σ w·x (exact); blocks taken four at a time, lane l of an f32x4
//     accumulator adds block 4g + l's term f32(Σ w·x) × (d_w × d_x) [+ m_w × s_x for q4_1 / q5_1]; a last partial
//     group adds its valid lanes only; the row's value is (l0 + l1) + (l2 + l3).
//   f32 / f16 / bf16: eight values a step into two f32x4 accumulators (values 0-3, 4-7 of each step), then
//     hsum(acc0 + acc1), then the cols % 8 tail values added one by one.
// matvec runs this once per row; matmul runs it per (row, token), two tokens per pass sharing the decoded weights,
// so a batched run and a token-by-token run give the same bits.
//
// Why the branches around block sums: V8 keeps loads in program order but sinks pure SIMD arithmetic to its first
// use; without a branch, all loads of four blocks are issued first and spill. A branch whose result feeds a phi makes
// each block's integer sum finish before the next block's loads (1.5× faster on the q8_0 matvec).
import { U8_1, U8_15, dotLevelsAdd, fifthBits, highNibbles, hsumF32x4, loadF16x4, lookup16, u8const, sum4I32x4, vconst } from "./common";
import { CB_IQ2_E8, CB_IQ2_NL, CB_IQ3_E8, CB_IQ3_NL, codebookBlockBytes, codebookLevels, codebookLevelsOf, codebookPairs, codebookQh } from "./codebook";
import { e8Value } from "./e8-scale";

// Format ids: compile-time constants, so each kernel's inlined copy keeps only its own branches.
export const Q8_0: i32 = 0;
export const Q4_0: i32 = 1;
export const Q4_1: i32 = 2;
export const Q5_0: i32 = 3;
export const Q5_1: i32 = 4;
export const IQ4_NL: i32 = 5;
export const IQ3_NL: i32 = 6;
export const IQ2_NL: i32 = 7;
export const IQ3_E8: i32 = 8;
export const IQ2_E8: i32 = 9;

/** The codebook code (codebook.ts CB_*) of kvsplit's codebook formats, 0 for the others. */
// @ts-ignore: decorator
@inline function codebookCode(fmt: i32): i32 {
  return fmt == IQ3_NL ? CB_IQ3_NL : fmt == IQ2_NL ? CB_IQ2_NL : fmt == IQ3_E8 ? CB_IQ3_E8 : fmt == IQ2_E8 ? CB_IQ2_E8 : 0;
}

/** The weight scales d_w of four blocks: fp16, or the one-byte codes of the e8 codebook formats. */
// @ts-ignore: decorator
@inline function weightScales(fmt: i32, w0: usize, w1: usize, w2: usize, w3: usize): v128 {
  if (fmt != IQ3_E8 && fmt != IQ2_E8) return loadF16x4(w0, w1, w2, w3);
  const d = f32x4.splat(e8Value(<u32>load<u8>(w0)));
  return f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(d, 1, e8Value(<u32>load<u8>(w1))), 2, e8Value(<u32>load<u8>(w2))), 3, e8Value(<u32>load<u8>(w3)));
}

// Offsets into VECTOR_CONSTANTS (common.ts)
const I16_EIGHT: usize = 96;
const I16_LOW_NIBBLE: usize = 112;
const I16_SIXTEEN: usize = 128;
const I16_BITS: usize = 144; // 1, 2, 4, ..., 128
const IQ4_LEVELS: usize = 160; // kvalues_iq4nl as 16 int8
const LANES_BELOW: usize = 176; // 176 + 16 (k − 1): lanes 0..k−1 all ones, k = 1..3

// @ts-ignore: decorator
@inline export function blockBytes(fmt: i32): usize {
  if (codebookCode(fmt) != 0) return codebookBlockBytes(codebookCode(fmt));
  return fmt == Q8_0 ? 34 : fmt == Q4_0 || fmt == IQ4_NL ? 18 : fmt == Q4_1 ? 20 : fmt == Q5_0 ? 22 : 24;
}

/** Partner block bytes: q8_0 (34) or, for q4_1 / q5_1, q8_1 (36). */
// @ts-ignore: decorator
@inline function partnerBytes(fmt: i32): usize {
  return fmt == Q4_1 || fmt == Q5_1 ? 36 : 34;
}

// @ts-ignore: decorator
@inline function affine(fmt: i32): bool {
  return fmt == Q4_1 || fmt == Q5_1;
}

/** Offset of the 16 nibble bytes (byte j: value j low, value j + 16 high). */
// @ts-ignore: decorator
@inline function nibbleOffset(fmt: i32): usize {
  return fmt == Q4_0 || fmt == IQ4_NL ? 2 : fmt == Q4_1 ? 4 : fmt == Q5_0 ? 6 : 8;
}

/** Values 8k .. 8k+7 (k = 0..3) of the weight block at wb as i16x8. */
// @ts-ignore: decorator
@inline export function weightPart(fmt: i32, wb: usize, k: i32): v128 {
  if (fmt == Q8_0) return v128.load8x8_s(wb + 2 + <usize>(k << 3));
  if (codebookCode(fmt) != 0) {
    const levels = codebookLevels(codebookCode(fmt), wb, k >> 1);
    return (k & 1) == 0 ? i16x8.extend_low_i8x16_s(levels) : i16x8.extend_high_i8x16_s(levels);
  }
  if (fmt == IQ4_NL) {
    const bytes = v128.load(wb + 2);
    const indices = k < 2 ? v128.and(bytes, u8const(U8_15)) : highNibbles(bytes);
    const levels = lookup16(vconst(IQ4_LEVELS), indices);
    return (k & 1) == 0 ? i16x8.extend_low_i8x16_s(levels) : i16x8.extend_high_i8x16_s(levels);
  }
  const bytes = v128.load8x8_u(wb + nibbleOffset(fmt) + <usize>((k & 1) << 3)); // u8 -> i16 lanes
  let q = k < 2 ? v128.and(bytes, vconst(I16_LOW_NIBBLE)) : i16x8.shr_u(bytes, 4);
  if (fmt == Q5_0 || fmt == Q5_1) {
    const qh = load<u32>(wb + (fmt == Q5_0 ? 2 : 4)); // bit j: fifth bit of value j
    const bits = v128.and(i16x8.splat(<i16>(qh >> <u32>(k << 3))), vconst(I16_BITS));
    q = v128.or(q, v128.and(i16x8.eq(bits, vconst(I16_BITS)), vconst(I16_SIXTEEN)));
  }
  if (fmt == Q4_0) q = i16x8.sub(q, vconst(I16_EIGHT));
  if (fmt == Q5_0) q = i16x8.sub(q, vconst(I16_SIXTEEN));
  return q;
}

/** Values 8k .. 8k+7 of the partner (q8_0 / q8_1) block at xb as i16x8. */
// @ts-ignore: decorator
@inline function partnerPart(fmt: i32, xb: usize, k: i32): v128 {
  return v128.load8x8_s(xb + (affine(fmt) ? 4 : 2) + <usize>(k << 3));
}

// ---- relaxed build (kernels-relaxed.wasm): block dots of q4_0 / q4_1 / q5_0 / q5_1, the table formats and q8_0 ----
// Their stored levels (nibble, + 16 × fifth bit) are 0..31: the i7 operand of common.ts's exact relaxed dots, the
// partner's int8 values the other. q4_0 / q5_0 subtract their offset (8, 16) as offset × Σ x, Σ x being a relaxed
// dot with ones. The block's integer Σ w·x is the plain build's, so the f32 terms are too.
// Table formats (iq4_nl and the codebook formats) have signed levels from a fixed table, none of them 0 and all within
// ±127: |w| is the i7 operand and each x takes w's sign, so Σ |w|·x·sign(w) = Σ w·x, again the plain build's integers
// for partner values within ±127. quantizeRow_q8_0 writes −128 (whose negation wraps) only when 1/d overflows, in a
// block whose fp16 scale is then 0: its term is ±0 in both builds. q8_0 weights may hold −128 (no |w|): there the
// partner is split instead (splitSignBlockSums), exact for the same partner values.

/** Whether the format's levels are unsigned (all but q8_0 and the table formats); test ASC_FEATURE_RELAXED_SIMD first. */
// @ts-ignore: decorator
@inline function unsignedLevels(fmt: i32): bool {
  return fmt != Q8_0 && fmt != IQ4_NL && codebookCode(fmt) == 0;
}

/** Stored levels of values 0-15 (half 0) or 16-31 (half 1) of the weight block at wb as u8x16 (0..31). */
// @ts-ignore: decorator
@inline function storedLevels(fmt: i32, wb: usize, half: i32): v128 {
  const bytes = v128.load(wb + nibbleOffset(fmt)); // (16) u8: value j low nibble, j + 16 high
  const q = half == 0 ? v128.and(bytes, u8const(U8_15)) : highNibbles(bytes);
  if (fmt != Q5_0 && fmt != Q5_1) return q;
  return v128.or(q, fifthBits(load<u32>(wb + (fmt == Q5_0 ? 2 : 4)), half << 1));
}

/** Whether the format's levels come from a signed table (iq4_nl and the codebook formats). */
// @ts-ignore: decorator
@inline function tableLevels(fmt: i32): bool {
  return fmt == IQ4_NL || codebookCode(fmt) != 0;
}

/**
 * What both halves of a table format's weight block decode from, loaded once: the codebook formats' index pairs
 * (codebook.ts codebookPairs), iq4_nl's 16 nibble bytes (value j low nibble, j + 16 high).
 */
// @ts-ignore: decorator
@inline function tableBits(fmt: i32, wb: usize): v128 {
  return codebookCode(fmt) != 0 ? codebookPairs(codebookCode(fmt), wb) : v128.load(wb + 2);
}

/**
 * The int8 levels of values 0-15 (half 0) or 16-31 (half 1) of a table format's weight block, from its tableBits and
 * its codebookQh (zeros for iq4_nl and iq2_nl).
 */
// @ts-ignore: decorator
@inline function signedLevels(fmt: i32, bits: v128, qh: v128, half: i32): v128 {
  const cb = codebookCode(fmt);
  if (cb != 0) return codebookLevelsOf(cb, bits, qh, half);
  return lookup16(vconst(IQ4_LEVELS), half == 0 ? v128.and(bits, u8const(U8_15)) : highNibbles(bits));
}

/**
 * The int8 values 16·half .. 16·half + 15 (half 0 or 1) of a q8_0, q4_0, q5_0 or iq4_nl weight block at wb: the
 * integers whose products with the partner's are summed (relaxed build; matmul-wide.ts's int8 layout).
 */
// @ts-ignore: decorator
@inline export function blockValuesI8(fmt: i32, wb: usize, half: i32): v128 {
  if (fmt == Q8_0) return v128.load(wb + 2 + <usize>(half << 4));
  if (fmt == IQ4_NL) return signedLevels(fmt, tableBits(fmt, wb), i32x4.splat(0), half);
  return i8x16.sub(storedLevels(fmt, wb, half), i8x16.splat(fmt == Q4_0 ? 8 : 16)); // q4_0, q5_0: level − offset
}

/**
 * Σ w·x of a q8_0 weight block (values w0: 0-15, w1: 16-31) with the q8_0 partner block at xb, the partner split into
 * x⁺ = max(x, 0) and x⁻ = x⁺ − x: both within 0..127, the relaxed dot's i7 operand, against the weights as they are
 * (−128 included): Σ w·x⁺ − Σ w·x⁻, the same integer. Four lane operations and two dots a 16 values, where widening
 * both sides to int16 takes seven (the partner's values are within ±127: quantizeRow_q8_0).
 */
// @ts-ignore: decorator
@inline function splitSignBlockSums(w0: v128, w1: v128, xb: usize): v128 {
  const x0 = v128.load(xb + 2); // (16) i8: values 0-15
  const x1 = v128.load(xb + 2, 16); // values 16-31
  const zero = i32x4.splat(0);
  const p0 = i8x16.max_s(x0, zero);
  const p1 = i8x16.max_s(x1, zero);
  const pos = dotLevelsAdd(w1, p1, dotLevelsAdd(w0, p0, zero));
  const neg = dotLevelsAdd(w1, i8x16.sub(p1, x1), dotLevelsAdd(w0, i8x16.sub(p0, x0), zero));
  return i32x4.sub(pos, neg);
}

/** Σ w·x of a table format's block with signed levels lo (values 0-15), hi (16-31) and the q8_0 partner block at xb. */
// @ts-ignore: decorator
@inline function signedRelaxedBlockSums(lo: v128, hi: v128, xb: usize): v128 {
  const x0 = v128.load(xb + 2); // (16) i8: values 0-15
  const x1 = v128.load(xb + 2, 16); // values 16-31
  const zero = i32x4.splat(0);
  const s0 = v128.bitselect(i8x16.neg(x0), x0, i8x16.lt_s(lo, zero)); // x · sign(w)
  const s1 = v128.bitselect(i8x16.neg(x1), x1, i8x16.lt_s(hi, zero));
  return dotLevelsAdd(s1, i8x16.abs(hi), dotLevelsAdd(s0, i8x16.abs(lo), zero));
}

/** Σ w·x of the weight block whose stored levels are lo (values 0-15), hi (16-31) with the partner block at xb. */
// @ts-ignore: decorator
@inline function relaxedBlockSums(fmt: i32, lo: v128, hi: v128, xb: usize): v128 {
  const qs = xb + (affine(fmt) ? 4 : 2);
  const x0 = v128.load(qs); // (16) i8: values 0-15
  const x1 = v128.load(qs, 16); // values 16-31
  const zero = i32x4.splat(0);
  const sums = dotLevelsAdd(x1, hi, dotLevelsAdd(x0, lo, zero));
  if (fmt != Q4_0 && fmt != Q5_0) return sums;
  const xsum = dotLevelsAdd(x1, u8const(U8_1), dotLevelsAdd(x0, u8const(U8_1), zero));
  return i32x4.sub(sums, i32x4.shl(xsum, fmt == Q4_0 ? 3 : 4));
}

/** Integer Σ w·x over one block pair, as four i32 partial sums. */
// @ts-ignore: decorator
@inline function blockSums(fmt: i32, wb: usize, xb: usize): v128 {
  if (ASC_FEATURE_RELAXED_SIMD && unsignedLevels(fmt)) return relaxedBlockSums(fmt, storedLevels(fmt, wb, 0), storedLevels(fmt, wb, 1), xb);
  if (ASC_FEATURE_RELAXED_SIMD && fmt == Q8_0) return splitSignBlockSums(v128.load(wb + 2), v128.load(wb + 2, 16), xb);
  if (ASC_FEATURE_RELAXED_SIMD && tableLevels(fmt)) {
    const bits = tableBits(fmt, wb);
    const qh = codebookQh(codebookCode(fmt), wb);
    return signedRelaxedBlockSums(signedLevels(fmt, bits, qh, 0), signedLevels(fmt, bits, qh, 1), xb);
  }
  const a = i32x4.add(i32x4.dot_i16x8_s(weightPart(fmt, wb, 0), partnerPart(fmt, xb, 0)), i32x4.dot_i16x8_s(weightPart(fmt, wb, 1), partnerPart(fmt, xb, 1)));
  const b = i32x4.add(i32x4.dot_i16x8_s(weightPart(fmt, wb, 2), partnerPart(fmt, xb, 2)), i32x4.dot_i16x8_s(weightPart(fmt, wb, 3), partnerPart(fmt, xb, 3)));
  return i32x4.add(a, b);
}

/** v, computed before this point (see the file comment); guard is any value that is never 0 here. */
// @ts-ignore: decorator
@inline function settled(v: v128, guard: usize): v128 {
  let r = i32x4.splat(0);
  if (guard != 0) r = v;
  return r;
}

/** Per-block terms of four blocks given their decoded weight scales dw (and mins mw): f32(Σ w·x) × (d_w × d_x) [+ m_w × s_x]. */
// @ts-ignore: decorator
@inline function scaledTerms(fmt: i32, sums: v128, dw: v128, mw: v128, x0: usize, x1: usize, x2: usize, x3: usize): v128 {
  const scaled = f32x4.mul(f32x4.convert_i32x4_s(sums), f32x4.mul(dw, loadF16x4(x0, x1, x2, x3)));
  if (!affine(fmt)) return scaled;
  return f32x4.add(scaled, f32x4.mul(mw, loadF16x4(x0 + 2, x1 + 2, x2 + 2, x3 + 2)));
}

/** The weight mins m_w of four blocks (q4_1 / q5_1; zeros, unused, otherwise). */
// @ts-ignore: decorator
@inline function weightMins(fmt: i32, w0: usize, w1: usize, w2: usize, w3: usize): v128 {
  return affine(fmt) ? loadF16x4(w0 + 2, w1 + 2, w2 + 2, w3 + 2) : f32x4.splat(0);
}

/** scaledTerms with the weight scales read from the blocks at w0..w3. */
// @ts-ignore: decorator
@inline function groupTerms(fmt: i32, sums: v128, w0: usize, w1: usize, w2: usize, w3: usize, x0: usize, x1: usize, x2: usize, x3: usize): v128 {
  return scaledTerms(fmt, sums, weightScales(fmt, w0, w1, w2, w3), weightMins(fmt, w0, w1, w2, w3), x0, x1, x2, x3);
}

/** Terms of the last 1..3 blocks (rest) of a row at p, q; lanes past them are 0 (they repeat the last block, masked). */
// @ts-ignore: decorator
@inline function tailTerms(fmt: i32, p: usize, q: usize, rest: i32): v128 {
  const B = blockBytes(fmt);
  const P = partnerBytes(fmt);
  const p1 = rest > 1 ? p + B : p;
  const p2 = rest > 2 ? p + 2 * B : p1;
  const q1 = rest > 1 ? q + P : q;
  const q2 = rest > 2 ? q + 2 * P : q1;
  const sums = sum4I32x4(blockSums(fmt, p, q), blockSums(fmt, p1, q1), blockSums(fmt, p2, q2), i32x4.splat(0));
  return v128.and(groupTerms(fmt, sums, p, p1, p2, p2, q, q1, q2, q2), vconst(LANES_BELOW + 16 * <usize>(rest - 1)));
}

/** Dot of the weight row at w (nb blocks) with the partner row at x, in the order of the file comment. */
// @ts-ignore: decorator
@inline export function rowDotBlocks(fmt: i32, w: usize, x: usize, nb: i32): f32 {
  const B = blockBytes(fmt);
  const P = partnerBytes(fmt);
  let acc = f32x4.splat(0);
  let p = w;
  let q = x;
  const groupsEnd = w + <usize>(nb >> 2) * 4 * B;
  while (p < groupsEnd) {
    const s0 = settled(blockSums(fmt, p, q), q);
    const s1 = settled(blockSums(fmt, p + B, q + P), q);
    const s2 = settled(blockSums(fmt, p + 2 * B, q + 2 * P), q);
    const s3 = settled(blockSums(fmt, p + 3 * B, q + 3 * P), q);
    acc = f32x4.add(acc, groupTerms(fmt, sum4I32x4(s0, s1, s2, s3), p, p + B, p + 2 * B, p + 3 * B, q, q + P, q + 2 * P, q + 3 * P));
    p += 4 * B;
    q += 4 * P;
  }
  if ((nb & 3) != 0) acc = f32x4.add(acc, tailTerms(fmt, p, q, nb & 3));
  return hsumF32x4(acc);
}

/**
 * Σ w·x of the weight block at wb with partner blocks ya and yb, the weights decoded once, as
 * [a0 + a2, a1 + a3, b0 + b2, b1 + b3] of the two partial-sum vectors a, b.
 */
// @ts-ignore: decorator
@inline function blockSumsPair(fmt: i32, wb: usize, ya: usize, yb: usize): v128 {
  if (ASC_FEATURE_RELAXED_SIMD && unsignedLevels(fmt)) {
    const lo = storedLevels(fmt, wb, 0);
    const hi = storedLevels(fmt, wb, 1);
    return pairHalvesI32x4(relaxedBlockSums(fmt, lo, hi, ya), relaxedBlockSums(fmt, lo, hi, yb));
  }
  if (ASC_FEATURE_RELAXED_SIMD && fmt == Q8_0) {
    const w0 = v128.load(wb + 2);
    const w1 = v128.load(wb + 2, 16);
    return pairHalvesI32x4(splitSignBlockSums(w0, w1, ya), splitSignBlockSums(w0, w1, yb));
  }
  if (ASC_FEATURE_RELAXED_SIMD && tableLevels(fmt)) {
    const bits = tableBits(fmt, wb);
    const qh = codebookQh(codebookCode(fmt), wb);
    const lo = signedLevels(fmt, bits, qh, 0);
    const hi = signedLevels(fmt, bits, qh, 1);
    return pairHalvesI32x4(signedRelaxedBlockSums(lo, hi, ya), signedRelaxedBlockSums(lo, hi, yb));
  }
  const w0 = weightPart(fmt, wb, 0);
  const w1 = weightPart(fmt, wb, 1);
  const w2 = weightPart(fmt, wb, 2);
  const w3 = weightPart(fmt, wb, 3);
  const a = i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(w0, partnerPart(fmt, ya, 0)), i32x4.dot_i16x8_s(w1, partnerPart(fmt, ya, 1))),
    i32x4.add(i32x4.dot_i16x8_s(w2, partnerPart(fmt, ya, 2)), i32x4.dot_i16x8_s(w3, partnerPart(fmt, ya, 3))),
  );
  const b = i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(w0, partnerPart(fmt, yb, 0)), i32x4.dot_i16x8_s(w1, partnerPart(fmt, yb, 1))),
    i32x4.add(i32x4.dot_i16x8_s(w2, partnerPart(fmt, yb, 2)), i32x4.dot_i16x8_s(w3, partnerPart(fmt, yb, 3))),
  );
  return pairHalvesI32x4(a, b);
}

/** [a0 + a2, a1 + a3, b0 + b2, b1 + b3]. */
// @ts-ignore: decorator
@inline function pairHalvesI32x4(a: v128, b: v128): v128 {
  return i32x4.add(i32x4.shuffle(a, b, 0, 1, 4, 5), i32x4.shuffle(a, b, 2, 3, 6, 7));
}

/** rowDotBlocks of one weight row with two partner rows xa, xb (weights decoded once per block); results stored at oa, ob. */
// @ts-ignore: decorator
@inline export function rowDotBlocks2(fmt: i32, w: usize, xa: usize, xb: usize, nb: i32, oa: usize, ob: usize): void {
  const B = blockBytes(fmt);
  const P = partnerBytes(fmt);
  let accA = f32x4.splat(0);
  let accB = f32x4.splat(0);
  let p = w;
  let qa = xa;
  let qb = xb;
  const groupsEnd = w + <usize>(nb >> 2) * 4 * B;
  while (p < groupsEnd) {
    const t0 = settled(blockSumsPair(fmt, p, qa, qb), qa);
    const t1 = settled(blockSumsPair(fmt, p + B, qa + P, qb + P), qa);
    const t2 = settled(blockSumsPair(fmt, p + 2 * B, qa + 2 * P, qb + 2 * P), qa);
    const t3 = settled(blockSumsPair(fmt, p + 3 * B, qa + 3 * P, qb + 3 * P), qa);
    const u01 = i32x4.shuffle(t0, t1, 0, 1, 4, 5);
    const u23 = i32x4.shuffle(t2, t3, 0, 1, 4, 5);
    const v01 = i32x4.shuffle(t0, t1, 2, 3, 6, 7);
    const v23 = i32x4.shuffle(t2, t3, 2, 3, 6, 7);
    const sa = i32x4.add(i32x4.shuffle(u01, u23, 0, 2, 4, 6), i32x4.shuffle(u01, u23, 1, 3, 5, 7));
    const sb = i32x4.add(i32x4.shuffle(v01, v23, 0, 2, 4, 6), i32x4.shuffle(v01, v23, 1, 3, 5, 7));
    const dw = weightScales(fmt, p, p + B, p + 2 * B, p + 3 * B);
    const mw = weightMins(fmt, p, p + B, p + 2 * B, p + 3 * B);
    accA = f32x4.add(accA, scaledTerms(fmt, sa, dw, mw, qa, qa + P, qa + 2 * P, qa + 3 * P));
    accB = f32x4.add(accB, scaledTerms(fmt, sb, dw, mw, qb, qb + P, qb + 2 * P, qb + 3 * P));
    p += 4 * B;
    qa += 4 * P;
    qb += 4 * P;
  }
  if ((nb & 3) != 0) {
    accA = f32x4.add(accA, tailTerms(fmt, p, qa, nb & 3));
    accB = f32x4.add(accB, tailTerms(fmt, p, qb, nb & 3));
  }
  store<f32>(oa, hsumF32x4(accA));
  store<f32>(ob, hsumF32x4(accB));
}
