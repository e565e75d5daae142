// Grouped attention: the query heads that share one kv head (a GQA group) are computed together, so each packed K
// block and each V row is decoded once per position for the whole group instead of once per query head; in a batch
// (a prompt), up to TOKEN_TILE tokens of the group share each decoded row too.
//
// It computes exactly what the per-head path (attention.ts attendHead, with the formats' dot_/axpy_ kernels) computes,
// with every float operation in the same order, so the results are the same bits; only the work is shared:
// - queries: each head converted to the K dot partner (quantizeRow_byType, as the per-head path), then laid out for
//   4 heads at once ("a quad"): integer partners widened to i16 per block, float partners decoded to f32, interleaved.
// - scores: per position the K slice is decoded once (ints widened to i16, f16/bf16 to f32), then every quad is scored
//   against it; each format's per-block float formula is the one of its dot_ kernel, with the 4 heads in 4 lanes.
//   Keys stored per channel (only this path reads them) are scored in integers their own way (scoreChannelsAll).
// - softmax: scores are stored (nPos, groupPadded) so max, exp and sums run on 4 heads per vector, summed in the
//   per-head path's order (positions mod 4 in four partial sums, then the tail).
// - values: a tile of positions' V slices is decoded once to f32, then a 4-head × 8-value register tile accumulates
//   acc += w × v over the tile's positions in order (the axpy order). kvsplit's codebook V formats are summed in
//   integers instead (accumulateCodebookTile), which the per-head path does not do: that path runs them only for
//   shapes this one cannot take.
// Requires headDim % 8 == 0 and whole K and V blocks per head (headDim % 32 == 0 for block formats); cache.ts uses the
// per-head path otherwise. A group that is not a multiple of 4 heads is padded with zero queries whose results are dropped.
import { U8_15, U8_16, U8_8, dequantQuants16, dequantQuants16Min, f16x4ToF32x4, fifthBits, highNibbles, hsumF32x4, loadF16, loadF16x4Subnormals, lookup16, u8const, vconst } from "./formats/common";
import { CB_IQ2_E8, CB_IQ2_NL, CB_IQ3_E8, CB_IQ3_NL, codebookBlockBytes, codebookLevelsOf, codebookPairs, codebookQh, codebookScale } from "./formats/codebook";
import { fwht_f32 } from "./rotation";
import {
  T_F32, T_F16, T_BF16, T_Q8_0, T_Q8_1, T_Q5_1, T_Q5_0, T_Q4_1, T_Q4_0, T_IQ4_NL, T_IQ3_NL, T_IQ2_NL, T_IQ3_E8, T_IQ2_E8, quantizeRow_byType, expNonPositive_f32x4,
  descI32, align16, D_N_HEADS, D_N_KV_HEADS, D_HEAD_DIM, D_SCALE, D_K_ROWS, D_K_ROW_BYTES, D_K_TYPE, D_K_PARTNER,
  D_V_ROWS, D_V_ROW_BYTES, D_V_TYPE, D_ROT_K, D_ROT_V, D_MAX_POS, D_HEAD_MAJOR, D_K_HEAD_STRIDE, D_V_HEAD_STRIDE,
  D_K_GROUP_BYTES, KEY_GROUP, LAYER_DESC_BYTES, attendHeadsScratchBytes,
} from "./attention-common";

/** Positions whose V slices are decoded together before accumulation. */
const V_TILE: i32 = 32;
/**
 * Query tokens of one kv head that share each decoded K and V row in a batch (an item of attendGrouped_packed when
 * its tokensPerItem says so): a prompt's rows are decoded once per tile of tokens instead of once per token.
 */
const TOKEN_TILE: i32 = 8;

/** The most tokens one item of attendGrouped_packed may cover (its tokensPerItem), which its scratch is sized for. */
export function attendTokenTile(): i32 {
  return TOKEN_TILE;
}

/** Bytes of a layer descriptor (attention-common.ts D_* fields). */
export function attendLayerDescBytes(): i32 {
  return LAYER_DESC_BYTES;
}

// ---- scratch layout of one thread (grouped path) ----------------------------------------------------------------
// per token slot (TOKEN_TILE of each, slot j at base + j × stride):
//   scores (maxPos, gp) f32 | acc (gp, headDim) f32 | qPrep (gp, headDim) f32 or i16 | qScale 2 × (gp, nBlocks) f32 |
//   sums (gp) f32 | range (sHi, lo, nPos, 0) i32
// once: qPrepExact (gp, headDim) f32 | exactRange 4 × i32 | kDec headDim f32 (or headDim i16 + 2 × nBlocks f32) |
//   kGroup (KEY_GROUP / 4, headDim / 2) × 8 i16 | kScales headDim i16 (in headDim f32) + headDim f32 |
//   qPairs (gp / 4, headDim / 2, 4) × 8 i16 | qSteps 2 × gp f32 | vDec (V_TILE, headDim) f32 (or (V_TILE / 2,
//   headDim, 2) i16) | vScales (V_TILE, vBlocks) f32 | vNormScales (V_TILE + 1, vBlocks) f32 |
//   vWeights (vBlocks, gp / 4, V_TILE / 2, 4) × 2 i16 |
//   vSteps (vBlocks, gp) f32 | qTmp headDim f32 + 64 | qRot headDim f32     (vBlocks = ceil(headDim / 32))
// Module globals, not objects (no managed memory: the JS allocator owns everything above __heap_base); every thread
// has its own instance, so these are per thread. Set by layoutScratch.
let sScores: usize = 0;
let sScoresStride: usize = 0;
let sAcc: usize = 0;
let sAccStride: usize = 0;
let sQPrep: usize = 0;
let sQPrepStride: usize = 0;
let sQScale: usize = 0;
let sQScaleStride: usize = 0;
let sSums: usize = 0;
let sSumsStride: usize = 0;
let sRanges: usize = 0;
const RANGE_BYTES: usize = 16;
let sQPrepExact: usize = 0;
let sExactRange: usize = 0;
let sKDec: usize = 0;
let sKGroup: usize = 0;
let sKScales: usize = 0;
let sQPairs: usize = 0;
let sQSteps: usize = 0;
let sVDec: usize = 0;
let sVScales: usize = 0;
let sVNormScales: usize = 0;
let sVWeights: usize = 0;
let sVSteps: usize = 0;
let sQTmp: usize = 0;
let sQRot: usize = 0;

// @ts-ignore: decorator
@inline function paddedGroup(group: i32): i32 {
  return (group + 3) & ~3;
}

/** Lay the grouped path's scratch out from `base`; returns its end. */
function layoutScratch(base: usize, group: i32, headDim: i32, maxPos: i32): usize {
  const gp = <usize>paddedGroup(group);
  const d = <usize>headDim;
  const nBlocks = <usize>(headDim >> 5) + 1;
  const tile = <usize>TOKEN_TILE;
  const vBlocks = (d + 31) >> 5;
  sScoresStride = align16(<usize>maxPos * gp * 4);
  sAccStride = align16(gp * d * 4);
  sQPrepStride = align16(gp * d * 4);
  sQScaleStride = align16(2 * gp * nBlocks * 4);
  sSumsStride = align16(gp * 4);
  sScores = base;
  sAcc = sScores + tile * sScoresStride;
  sQPrep = sAcc + tile * sAccStride;
  sQScale = sQPrep + tile * sQPrepStride;
  sSums = sQScale + tile * sQScaleStride;
  sRanges = sSums + tile * sSumsStride;
  sQPrepExact = sRanges + tile * RANGE_BYTES;
  sExactRange = sQPrepExact + align16(gp * d * 4);
  sKDec = sExactRange + RANGE_BYTES;
  sKGroup = sKDec + align16(d * 4 + nBlocks * 8);
  sKScales = sKGroup + align16(<usize>KEY_GROUP * d * 2);
  sQPairs = sKScales + align16(2 * d * 4);
  sQSteps = sQPairs + align16(gp * d * 8);
  sVDec = sQSteps + align16(2 * gp * 4);
  sVScales = sVDec + align16(<usize>V_TILE * d * 4);
  sVNormScales = sVScales + align16(<usize>V_TILE * vBlocks * 4);
  sVWeights = sVNormScales + align16((<usize>V_TILE + 1) * vBlocks * 4);
  sVSteps = sVWeights + align16(vBlocks * gp * <usize>(V_TILE >> 1) * 4);
  sQTmp = sVSteps + align16(vBlocks * gp * 4);
  sQRot = sQTmp + align16(d * 4 + 64);
  return sQRot + align16(d * 4);
}

// @ts-ignore: decorator
@inline function scoresOf(slot: i32): usize {
  return sScores + <usize>slot * sScoresStride;
}
// @ts-ignore: decorator
@inline function accOf(slot: i32): usize {
  return sAcc + <usize>slot * sAccStride;
}
// @ts-ignore: decorator
@inline function qScaleOf(slot: i32): usize {
  return sQScale + <usize>slot * sQScaleStride;
}
// @ts-ignore: decorator
@inline function sumsOf(slot: i32): usize {
  return sSums + <usize>slot * sSumsStride;
}

/** A position range record (RANGE_BYTES: pStart, pEnd, then nPos for a token slot's) at `at`. */
// @ts-ignore: decorator
@inline function setRange(at: usize, pStart: i32, pEnd: i32, nPos: i32): void {
  store<i32>(at, pStart);
  store<i32>(at, pEnd, 4);
  store<i32>(at, nPos, 8);
}

/** Bytes of per-thread scratch either attention path needs for this shape (attendGrouped_packed, attendHeads_packed). */
export function attendScratchBytes(nHeads: i32, nKvHeads: i32, headDim: i32, maxPos: i32): usize {
  const grouped = layoutScratch(0, nHeads / nKvHeads, headDim, maxPos);
  const heads = attendHeadsScratchBytes(headDim, maxPos);
  return grouped > heads ? grouped : heads;
}

// ---- small vector helpers ------------------------------------------------------------------------------------------

/** [Σa, Σb, Σc, Σd] of four f32x4, each summed as (l0 + l1) + (l2 + l3) (hsumF32x4's order). */
// @ts-ignore: decorator
@inline function hsum4F32(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(i32x4.shuffle(a, b, 0, 4, 2, 6), i32x4.shuffle(a, b, 1, 5, 3, 7));
  const cd = f32x4.add(i32x4.shuffle(c, d, 0, 4, 2, 6), i32x4.shuffle(c, d, 1, 5, 3, 7));
  return f32x4.add(i32x4.shuffle(ab, cd, 0, 1, 4, 5), i32x4.shuffle(ab, cd, 2, 3, 6, 7));
}

/** [Σa, Σb, Σc, Σd] of four i32x4 (exact). */
// @ts-ignore: decorator
@inline function hsum4I32(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(i32x4.shuffle(a, b, 0, 4, 2, 6), i32x4.shuffle(a, b, 1, 5, 3, 7));
  const cd = i32x4.add(i32x4.shuffle(c, d, 0, 4, 2, 6), i32x4.shuffle(c, d, 1, 5, 3, 7));
  return i32x4.add(i32x4.shuffle(ab, cd, 0, 1, 4, 5), i32x4.shuffle(ab, cd, 2, 3, 6, 7));
}

/**
 * Four fp16 (zero-extended in i32 lanes) -> f32x4: |h| << 13 is the value × 2^-112 in f32 bits (subnormals included,
 * WebAssembly does not flush them), so one multiply by 2^112 rebiases it; exponent 31 (inf, NaN) gets the f32
 * all-ones exponent or'ed in, keeping the NaN payload; the sign is or'ed back last. Exact, like f16x4ToF32x4.
 */
// @ts-ignore: decorator
@inline function f16x4FastToF32x4(halves: v128): v128 {
  const magnitude = i32x4.shl(v128.and(halves, vconst(0)), 13); // constants: formats/common.ts VECTOR_CONSTANTS
  const value = f32x4.mul(magnitude, vconst(48)); // × 2^112
  const infNan = v128.and(i32x4.gt_s(magnitude, vconst(272)), vconst(32));
  return v128.or(v128.or(value, infNan), i32x4.shl(v128.and(halves, vconst(64)), 16));
}

// @ts-ignore: decorator
@inline function iq4nlLevels(): v128 {
  return vconst(160); // ggml's kvalues_iq4nl
}

/** The codebook code (formats/codebook.ts CB_*) of kvsplit's codebook formats, 0 for the others. */
// @ts-ignore: decorator
@inline function codebookOf(type: i32): i32 {
  return type == T_IQ3_NL ? CB_IQ3_NL : type == T_IQ2_NL ? CB_IQ2_NL : type == T_IQ3_E8 ? CB_IQ3_E8 : type == T_IQ2_E8 ? CB_IQ2_E8 : 0;
}

/** A block's scale d: fp16 at its start, or a codebook format's own (one-byte codes for the e8 ones). */
// @ts-ignore: decorator
@inline function blockScale(type: i32, block: usize): f32 {
  return codebookOf(type) != 0 ? codebookScale(codebookOf(type), block) : loadF16(block);
}

/** Bytes of one 32-value block of a block format. */
// @ts-ignore: decorator
@inline function blockBytes(type: i32): usize {
  switch (type) {
    case T_Q8_0: return 34;
    case T_Q5_1: return 24;
    case T_Q5_0: return 22;
    case T_Q4_1: return 20;
    case T_Q4_0: return 18;
    case T_IQ4_NL: return 18;
    case T_IQ3_NL: return codebookBlockBytes(CB_IQ3_NL);
    case T_IQ2_NL: return codebookBlockBytes(CB_IQ2_NL);
    case T_IQ3_E8: return codebookBlockBytes(CB_IQ3_E8);
    case T_IQ2_E8: return codebookBlockBytes(CB_IQ2_E8);
  }
  return 0;
}

/** The low (half 0) or high (half 1) nibbles of the bytes of v. */
// @ts-ignore: decorator
@inline function nibbles(v: v128, half: i32): v128 {
  return half == 0 ? v128.and(v, u8const(U8_15)) : highNibbles(v);
}

/**
 * A block's index pairs for halfQuants: codebookPairs for the codebook formats (one load serves both halves), zeros
 * for the others.
 */
// @ts-ignore: decorator
@inline function blockPairs(type: i32, block: usize): v128 {
  const cb = codebookOf(type);
  return cb != 0 ? codebookPairs(cb, block) : i32x4.splat(0);
}

/**
 * Half `half` of a block's 32 integer quants (values 0..15, or 16..31 for half 1) as the format's dot_ kernel sees
 * them; the codebook formats' from their blockPairs and codebookQh, read once for both halves.
 */
// @ts-ignore: decorator
@inline function halfQuants(type: i32, block: usize, pairs: v128, qh: v128, half: i32): v128 {
  const cb = codebookOf(type);
  if (cb != 0) return codebookLevelsOf(cb, pairs, qh, half);
  switch (type) {
    case T_Q8_0: return v128.load(block + (<usize>half << 4), 2);
    case T_Q4_0: return i8x16.sub(nibbles(v128.load(block, 2), half), u8const(U8_8));
    case T_Q4_1: return nibbles(v128.load(block, 4), half);
    case T_Q5_0: return i8x16.sub(v128.or(nibbles(v128.load(block, 6), half), fifthBits(load<u32>(block, 2), half << 1)), u8const(U8_16));
    case T_Q5_1: return v128.or(nibbles(v128.load(block, 8), half), fifthBits(load<u32>(block, 4), half << 1));
    case T_IQ4_NL: return lookup16(iq4nlLevels(), nibbles(v128.load(block, 2), half));
  }
  return i8x16.splat(0);
}

/** Formats with a per-block minimum m (value = q·d + m). */
// @ts-ignore: decorator
@inline function hasMin(type: i32): bool {
  return type == T_Q4_1 || type == T_Q5_1;
}

/** 32 int8 at lo/hi -> four i16x8 at dst (extend low, high of lo, then of hi: the lanes dotI8x16 pairs). */
// @ts-ignore: decorator
@inline function storeWidened(dst: usize, lo: v128, hi: v128): void {
  v128.store(dst, i16x8.extend_low_i8x16_s(lo));
  v128.store(dst, i16x8.extend_high_i8x16_s(lo), 16);
  v128.store(dst, i16x8.extend_low_i8x16_s(hi), 32);
  v128.store(dst, i16x8.extend_high_i8x16_s(hi), 48);
}

// ---- queries -------------------------------------------------------------------------------------------------------

/**
 * Quad-interleaved queries of one group: head j of the group is lane j % 4 of quad j / 4.
 *   integer partner: qPrep[((quad·nBlocks + b)·4 + lane)·64] = block b's 32 quants as i16; qScale[(quad·nBlocks + b)·4 + lane] = d,
 *                    qScale[gp·nBlocks + same] = s (q8_1)
 *   float partner:   qPrep[((quad·headDim/4 + c)·4 + lane)·16] = values 4c..4c+3 as f32
 * Padding heads are zeros.
 */
function prepareQueries(
  qGroup: usize, group: i32, headDim: i32, partner: i32, intPartner: bool, rotK: i32, prep: usize, qScale: usize,
): void {
  const gp = paddedGroup(group);
  const nBlocks = headDim >> 5;
  const nChunks = headDim >> 2;
  memory.fill(prep, 0, <usize>gp * <usize>headDim * 4);
  if (intPartner) memory.fill(qScale, 0, <usize>(2 * gp * nBlocks) * 4);
  for (let j = 0; j < group; j++) {
    let qHead = qGroup + (<usize>j * <usize>headDim << 2);
    if (rotK > 0) {
      fwht_f32(qHead, sQRot, rotK, headDim / rotK);
      qHead = sQRot;
    }
    quantizeRow_byType(partner, qHead, sQTmp, headDim);
    const quad = j >> 2;
    const lane = j & 3;
    if (intPartner) {
      const bytes: usize = partner == T_Q8_1 ? 36 : 34;
      const qsOffset: usize = partner == T_Q8_1 ? 4 : 2;
      for (let b = 0; b < nBlocks; b++) {
        const block = sQTmp + <usize>b * bytes;
        const slot = (quad * nBlocks + b) * 4 + lane;
        storeWidened(prep + (<usize>slot << 6), v128.load(block + qsOffset), v128.load(block + qsOffset, 16));
        store<f32>(qScale + (<usize>slot << 2), loadF16(block));
        if (partner == T_Q8_1) store<f32>(qScale + (<usize>(gp * nBlocks + slot) << 2), loadF16(block + 2));
      }
    } else {
      for (let c = 0; c < nChunks; c++) {
        let v: v128;
        if (partner == T_F16) v = f16x4FastToF32x4(i32x4.extend_low_i16x8_u(v128.load64_zero(sQTmp + (<usize>c << 3))));
        else if (partner == T_BF16) v = i32x4.shl(i32x4.extend_low_i16x8_u(v128.load64_zero(sQTmp + (<usize>c << 3))), 16);
        else v = v128.load(sQTmp + (<usize>c << 4));
        v128.store(prep + (<usize>((quad * nChunks + c) * 4 + lane) << 4), v);
      }
    }
  }
}

// ---- scores --------------------------------------------------------------------------------------------------------

/** Decode the kv slice of one K row for the block-format `type`: (headDim) i16 quants, then d and m per block (f32). */
// @ts-ignore: decorator
@inline function decodeKInt(type: i32, row: usize, nBlocks: i32, dst: usize): void {
  const bytes = blockBytes(type);
  const scales = dst + (<usize>nBlocks << 6);
  for (let b = 0; b < nBlocks; b++) {
    const block = row + <usize>b * bytes;
    const pairs = blockPairs(type, block);
    const qh = codebookQh(codebookOf(type), block); // zeros without a load where there is no qh
    storeWidened(dst + (<usize>b << 6), halfQuants(type, block, pairs, qh, 0), halfQuants(type, block, pairs, qh, 1));
    store<f32>(scales + (<usize>b << 2), blockScale(type, block));
    if (hasMin(type)) store<f32>(scales + (<usize>(nBlocks + b) << 2), loadF16(block + 2));
  }
}

/** Integer sums of the 32 decoded quants at k with one query head's 32 i16 at qh: lanes as dotI8x16 gives them. */
// @ts-ignore: decorator
@inline function dotBlockI16(k0: v128, k1: v128, k2: v128, k3: v128, qh: usize): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(k0, v128.load(qh)), i32x4.dot_i16x8_s(k1, v128.load(qh, 16))),
    i32x4.add(i32x4.dot_i16x8_s(k2, v128.load(qh, 32)), i32x4.dot_i16x8_s(k3, v128.load(qh, 48))),
  );
}

/**
 * Scores (unscaled dots) of one quad against a decoded block-format K slice, each format's per-block float formula:
 *   q8_0, codebook formats: Σ_b f32(sumi)·(dK·dQ)          q4_0: Σ_b (f32(sumi)·dK)·dQ
 *   q4_1: Σ_b ((dK·dQ)·f32(sumi) + mK·sQ)          q5_0, iq4_nl: hsum over lanes of Σ_b f32(sumi lanes)·(dK·dQ)
 *   q5_1: the same + Σ_b mK·sQ
 * (llama.cpp's orders for its formats; kvsplit's own codebook formats take the cheapest, one hsum per block for the
 * quad's four heads instead of a scale splat per head.)
 */
// @ts-ignore: decorator
@inline function scoreQuadInt(type: i32, kDec: usize, nBlocks: i32, qPrep: usize, dQ: usize, sQ: usize): v128 {
  const kScales = kDec + (<usize>nBlocks << 6);
  const laneStyle = type == T_Q5_0 || type == T_IQ4_NL || type == T_Q5_1;
  let total = f32x4.splat(0);
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  for (let b = 0; b < nBlocks; b++) {
    const kb = kDec + (<usize>b << 6);
    const k0 = v128.load(kb);
    const k1 = v128.load(kb, 16);
    const k2 = v128.load(kb, 32);
    const k3 = v128.load(kb, 48);
    const qb = qPrep + (<usize>b << 8);
    const s0 = dotBlockI16(k0, k1, k2, k3, qb);
    const s1 = dotBlockI16(k0, k1, k2, k3, qb + 64);
    const s2 = dotBlockI16(k0, k1, k2, k3, qb + 128);
    const s3 = dotBlockI16(k0, k1, k2, k3, qb + 192);
    const dK = load<f32>(kScales + (<usize>b << 2));
    const dQv = v128.load(dQ + (<usize>b << 4));
    if (laneStyle) {
      a0 = f32x4.add(a0, f32x4.mul(f32x4.convert_i32x4_s(s0), f32x4.splat(dK * f32x4.extract_lane(dQv, 0))));
      a1 = f32x4.add(a1, f32x4.mul(f32x4.convert_i32x4_s(s1), f32x4.splat(dK * f32x4.extract_lane(dQv, 1))));
      a2 = f32x4.add(a2, f32x4.mul(f32x4.convert_i32x4_s(s2), f32x4.splat(dK * f32x4.extract_lane(dQv, 2))));
      a3 = f32x4.add(a3, f32x4.mul(f32x4.convert_i32x4_s(s3), f32x4.splat(dK * f32x4.extract_lane(dQv, 3))));
      if (type == T_Q5_1) {
        const mK = load<f32>(kScales + (<usize>(nBlocks + b) << 2));
        total = f32x4.add(total, f32x4.mul(f32x4.splat(mK), v128.load(sQ + (<usize>b << 4))));
      }
    } else {
      const sumi = f32x4.convert_i32x4_s(hsum4I32(s0, s1, s2, s3));
      if (type == T_Q8_0 || codebookOf(type) != 0) {
        total = f32x4.add(total, f32x4.mul(sumi, f32x4.mul(f32x4.splat(dK), dQv)));
      } else if (type == T_Q4_0) {
        total = f32x4.add(total, f32x4.mul(f32x4.mul(sumi, f32x4.splat(dK)), dQv));
      } else { // q4_1
        const mK = load<f32>(kScales + (<usize>(nBlocks + b) << 2));
        const minTerm = f32x4.mul(f32x4.splat(mK), v128.load(sQ + (<usize>b << 4)));
        total = f32x4.add(total, f32x4.add(f32x4.mul(f32x4.mul(f32x4.splat(dK), dQv), sumi), minTerm));
      }
    }
  }
  if (type == T_Q5_1) return f32x4.add(hsum4F32(a0, a1, a2, a3), total);
  if (laneStyle) return hsum4F32(a0, a1, a2, a3);
  return total;
}

/** Dots of one quad with a K slice already in f32 (k): two accumulators per head (even, odd 4-value chunks) as dot_f32/f16/bf16. */
// @ts-ignore: decorator
@inline function scoreQuadFloat(k: usize, headDim: i32, qPrep: usize): v128 {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  let e0 = f32x4.splat(0);
  let e1 = f32x4.splat(0);
  let e2 = f32x4.splat(0);
  let e3 = f32x4.splat(0);
  for (let c8 = 0; c8 < headDim >> 3; c8++) {
    const kl = v128.load(k + (<usize>c8 << 5));
    const kh = v128.load(k + (<usize>c8 << 5), 16);
    const q = qPrep + (<usize>c8 << 7);
    a0 = f32x4.add(a0, f32x4.mul(kl, v128.load(q)));
    a1 = f32x4.add(a1, f32x4.mul(kl, v128.load(q, 16)));
    a2 = f32x4.add(a2, f32x4.mul(kl, v128.load(q, 32)));
    a3 = f32x4.add(a3, f32x4.mul(kl, v128.load(q, 48)));
    e0 = f32x4.add(e0, f32x4.mul(kh, v128.load(q, 64)));
    e1 = f32x4.add(e1, f32x4.mul(kh, v128.load(q, 80)));
    e2 = f32x4.add(e2, f32x4.mul(kh, v128.load(q, 96)));
    e3 = f32x4.add(e3, f32x4.mul(kh, v128.load(q, 112)));
  }
  return hsum4F32(f32x4.add(a0, e0), f32x4.add(a1, e1), f32x4.add(a2, e2), f32x4.add(a3, e3));
}

/** headDim f16 or bf16 values at src -> f32 at dst. */
// @ts-ignore: decorator
@inline function decodeHalfRow(type: i32, src: usize, dst: usize, headDim: i32): void {
  for (let c8 = 0; c8 < headDim >> 3; c8++) {
    const halves = v128.load(src + (<usize>c8 << 4));
    const o = dst + (<usize>c8 << 5);
    if (type == T_F16) {
      v128.store(o, f16x4FastToF32x4(i32x4.extend_low_i16x8_u(halves)));
      v128.store(o, f16x4FastToF32x4(i32x4.extend_high_i16x8_u(halves)), 16);
    } else {
      v128.store(o, i32x4.shl(i32x4.extend_low_i16x8_u(halves), 16));
      v128.store(o, i32x4.shl(i32x4.extend_high_i16x8_u(halves), 16), 16);
    }
  }
}

/**
 * The smallest pStart (low 32 bits) and the largest pEnd (high 32 bits) of nTok range records at `ranges`, empty
 * ranges left out; pStart >= pEnd when all are empty.
 */
// @ts-ignore: decorator
@inline function rangeHull(nTok: i32, ranges: usize): i64 {
  let lo = i32.MAX_VALUE;
  let hi = 0;
  for (let i = 0; i < nTok; i++) {
    const at = ranges + <usize>i * RANGE_BYTES;
    const a = load<i32>(at);
    const b = load<i32>(at, 4);
    if (a < b) {
      lo = min(lo, a);
      hi = max(hi, b);
    }
  }
  return (<i64>hi << 32) | <i64><u32>lo;
}

/**
 * For each of nTok token slots i (slot firstSlot + i, its range record at ranges + i·RANGE_BYTES, its queries at
 * prep + i·prepStride): scores[(p, gp)] = scale × q·k for every position p in its [pStart, pEnd) and every quad, with
 * the queries prepared for K of `type` (a constant after inlining); position p's row is at kSlice + p·kRowBytes. Each
 * row is decoded once for all the slots whose range holds it.
 */
// @ts-ignore: decorator
@inline function scoreAll(
  type: i32, kSlice: usize, kRowBytes: i32, nTok: i32, ranges: usize, firstSlot: i32, gp: i32, headDim: i32, scale: f32,
  prep: usize, prepStride: usize,
): void {
  const nQuads = gp >> 2;
  const nBlocks = headDim >> 5;
  const scaleV = f32x4.splat(scale);
  const intK = type != T_F32 && type != T_F16 && type != T_BF16;
  const quadPrepBytes = <usize>headDim << 4; // float partner: 4 heads × headDim f32 per quad
  const hull = rangeHull(nTok, ranges);
  for (let p = <i32>hull; p < <i32>(hull >> 32); p++) {
    const row = kSlice + <usize>p * <usize>kRowBytes;
    let k = row;
    if (intK) {
      decodeKInt(type, row, nBlocks, sKDec);
    } else if (type != T_F32) {
      decodeHalfRow(type, row, sKDec, headDim);
      k = sKDec;
    }
    for (let i = 0; i < nTok; i++) {
      const range = ranges + <usize>i * RANGE_BYTES;
      if (p < load<i32>(range) || p >= load<i32>(range, 4)) continue;
      const out = scoresOf(firstSlot + i) + (<usize>(p * gp) << 2);
      const q = prep + <usize>i * prepStride;
      if (intK) {
        const qScale = qScaleOf(firstSlot + i);
        for (let quad = 0; quad < nQuads; quad++) {
          const slot = <usize>(quad * nBlocks * 4);
          const v = scoreQuadInt(type, sKDec, nBlocks, q + (slot << 6), qScale + (slot << 2), qScale + (<usize>(gp * nBlocks) << 2) + (slot << 2));
          v128.store(out + (<usize>quad << 4), f32x4.mul(v, scaleV));
        }
      } else {
        for (let quad = 0; quad < nQuads; quad++) {
          const v = scoreQuadFloat(k, headDim, q + <usize>quad * quadPrepBytes);
          v128.store(out + (<usize>quad << 4), f32x4.mul(v, scaleV));
        }
      }
    }
  }
}

/**
 * Keys per channel (key-channels.ts) scored in integers. Position p of a group has quant k[p][c] in channel c's block,
 * whose scale d[c] (and min m[c]) the whole group shares, so q·key(p) = Σ_c q[c]·d[c]·k[p][c] + Σ_c q[c]·m[c]. Both
 * factors are rounded to i16 at their own maxima, the query once per token, the scales once per group, so that the
 * per-(token, group, head) work is one Q15 multiply (q15mulr: (a·b + 2^14) >> 15) per channel:
 *   per token and head:  qs[c] = round(q[c] · (32767 / max_c |q|)),  sq = max_c |q| / 32767      (scaleChannelQueries)
 *   per group:           dn[c] = round(d[c] · (32767 / max_c |d|)),  sd = max_c |d| / 32767      (loadChannelScales)
 *   per both:            qi[c] = q15mulr(qs[c], dn[c])  (|qi| <= 32767)                           (foldChannelQueries)
 *   score(p) = scale × (f32(Σ_c qi[c]·k[p][c]) · ((sq · sd) · 32768) + sq · Σ_c qs[c]·m[c])
 * rounding half to even, all in f32 but the integer sums, which are exact (|Σ| <= headDim · 128 · 32767 < 2^31 for
 * headDim <= 511); the min term only for q4_1 and q5_1. test/helpers/kv-reference.ts computes the same.
 */

/**
 * n f32 (four per chunk, chunks chunkStride bytes apart from `at`) rounded in place to i16 at their maximum |x|:
 * x · f32(32767 / max), half to even (+ 1.5·2^23 leaves the integer in an f32's low bits), zeros when the maximum is
 * 0; values 8·c8 .. 8·c8 + 7 as an i16x8 at at + c8·outStride (outStride <= 2·chunkStride, so nothing is overwritten
 * before it is read). Returns the step, max / 32767 (f32x4.max: NaN when a value is NaN).
 */
// @ts-ignore: decorator
@inline function roundToI16AtMax(at: usize, chunkStride: usize, outStride: usize, n: i32): f32 {
  let top = f32x4.splat(0);
  for (let c = 0; c < n >> 2; c++) top = f32x4.max(top, f32x4.abs(v128.load(at + <usize>c * chunkStride)));
  top = f32x4.max(top, i32x4.shuffle(top, top, 2, 3, 0, 1));
  top = f32x4.max(top, i32x4.shuffle(top, top, 1, 0, 3, 2)); // every lane: the maximum
  const inv = v128.and(f32x4.div(f32x4.splat(32767), top), f32x4.gt(top, f32x4.splat(0)));
  const roundBias = f32x4.splat(12582912.0);
  for (let c8 = 0; c8 < n >> 3; c8++) {
    const from = at + <usize>(c8 * 2) * chunkStride;
    const x = f32x4.add(f32x4.mul(v128.load(from), inv), roundBias);
    const y = f32x4.add(f32x4.mul(v128.load(from + chunkStride), inv), roundBias);
    v128.store(at + <usize>c8 * outStride, i8x16.shuffle(x, y, 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29));
  }
  return f32x4.extract_lane(f32x4.div(top, f32x4.splat(32767)), 0);
}

/**
 * One token's f32 queries (prepareQueries' float layout at prep, (gp, headDim)) rounded in place to qs, head
 * (quad·4 + lane)'s channels 8·c8 .. 8·c8 + 7 as i16x8 where its f32 chunk 2·c8 was, at prep + ((quad·headDim/4 +
 * 2·c8)·4 + lane)·16; their steps sq per head at steps[head] (f32).
 */
// @ts-ignore: decorator
@inline function scaleChannelQueries(prep: usize, gp: i32, headDim: i32, steps: usize): void {
  for (let head = 0; head < gp; head++) {
    const q = prep + (<usize>((head >> 2) * headDim + (head & 3)) << 4); // chunk c at + c·64
    store<f32>(steps + (<usize>head << 2), roundToI16AtMax(q, 64, 128, headDim));
  }
}

/**
 * The group's channel scales rounded to i16 at their maximum, and its mins: dn (headDim i16) at sKScales, m (headDim
 * f32) at sKScales + headDim·4, from the group's headDim blocks at `group` (fp16 scales four at a time, exact,
 * subnormals included); returns sd.
 */
// @ts-ignore: decorator
@inline function loadChannelScales(type: i32, group: usize, headDim: i32): f32 {
  const bytes = blockBytes(type);
  const cb = codebookOf(type);
  for (let c = 0; c < headDim; c += 4) {
    const b0 = group + <usize>c * bytes;
    const b1 = b0 + bytes;
    const b2 = b1 + bytes;
    const b3 = b2 + bytes;
    const d = cb != 0
      ? f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(codebookScale(cb, b0)), 1, codebookScale(cb, b1)), 2, codebookScale(cb, b2)), 3, codebookScale(cb, b3))
      : loadF16x4Subnormals(b0, b1, b2, b3);
    v128.store(sKScales + (<usize>c << 2), d);
    if (hasMin(type)) v128.store(sKScales + (<usize>(headDim + c) << 2), loadF16x4Subnormals(b0 + 2, b1 + 2, b2 + 2, b3 + 2));
  }
  return roundToI16AtMax(sKScales, 16, 16, headDim);
}

/**
 * One token's rounded queries (qs at prep, steps sq at qSteps) folded with the group's rounded channel scales
 * (sKScales, sd), for scoreChannelOctet:
 *   qPairs[((quad·headDim/2 + pair)·4 + lane)·16] = head (quad·4 + lane)'s [qi[2·pair], qi[2·pair + 1]] × 4 (i16)
 *   steps[head] = (sq · sd) · 32768, steps[gp + head] = sq · Σ_c qs[c]·m[c] (f32)
 */
// @ts-ignore: decorator
@inline function foldChannelQueries(withMin: bool, prep: usize, qSteps: usize, sd: f32, gp: i32, headDim: i32, qPairs: usize, steps: usize): void {
  const nChunks = headDim >> 2;
  const nPairs = headDim >> 1;
  for (let quad = 0; quad < gp >> 2; quad++) {
    for (let lane = 0; lane < 4; lane++) {
      const q = prep + (<usize>(quad * nChunks * 4 + lane) << 4); // channels 8·c8 .. at + c8·128 (i16)
      const head = quad * 4 + lane;
      const sq = load<f32>(qSteps + (<usize>head << 2));
      store<f32>(steps + (<usize>head << 2), (sq * sd) * <f32>32768);
      let minTerm = f32x4.splat(0);
      for (let c8 = 0; c8 < headDim >> 3; c8++) {
        const qs = v128.load(q + (<usize>c8 << 7));
        const dn = v128.load(sKScales + (<usize>c8 << 4));
        const qi = ASC_FEATURE_RELAXED_SIMD ? i16x8.relaxed_q15mulr_s(qs, dn) : i16x8.q15mulr_sat_s(qs, dn); // the same: no −32768
        const at = qPairs + (<usize>((quad * nPairs + c8 * 4) * 4 + lane) << 4); // pair 4·c8 + j at + j·64
        v128.store(at, i32x4.shuffle(qi, qi, 0, 0, 0, 0));
        v128.store(at, i32x4.shuffle(qi, qi, 1, 1, 1, 1), 64);
        v128.store(at, i32x4.shuffle(qi, qi, 2, 2, 2, 2), 128);
        v128.store(at, i32x4.shuffle(qi, qi, 3, 3, 3, 3), 192);
        if (withMin) {
          const m = sKScales + (<usize>(headDim + c8 * 8) << 2);
          minTerm = f32x4.add(minTerm, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(qs)), v128.load(m)));
          minTerm = f32x4.add(minTerm, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(qs)), v128.load(m, 16)));
        }
      }
      store<f32>(steps + (<usize>(gp + head) << 2), withMin ? sq * hsumF32x4(minTerm) : 0);
    }
  }
}

/**
 * A group's keys laid out for pmaddwd over channel pairs: dst[(pq·headDim/2 + pair)·16] = positions 4·pq .. 4·pq + 3
 * of channels 2·pair and 2·pair + 1, interleaved [p0c0 p0c1 p1c0 p1c1 ...] (i16), pq = 0 .. KEY_GROUP/4 − 1.
 */
// @ts-ignore: decorator
@inline function decodeChannelPairs(type: i32, group: usize, headDim: i32, dst: usize): void {
  const bytes = blockBytes(type);
  const nPairs = headDim >> 1;
  const pqStride = <usize>nPairs << 4;
  const cb = codebookOf(type);
  for (let pair = 0; pair < nPairs; pair++) {
    const b0 = group + <usize>(pair * 2) * bytes;
    const b1 = b0 + bytes;
    const pairs0 = blockPairs(type, b0);
    const pairs1 = blockPairs(type, b1);
    const qh0 = codebookQh(cb, b0); // zeros without a load where there is no qh
    const qh1 = codebookQh(cb, b1);
    for (let half = 0; half < 2; half++) {
      const x0 = halfQuants(type, b0, pairs0, qh0, half);
      const x1 = halfQuants(type, b1, pairs1, qh1, half);
      const lo = i8x16.shuffle(x0, x1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const hi = i8x16.shuffle(x0, x1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      const at = dst + <usize>(half * 4) * pqStride + (<usize>pair << 4);
      v128.store(at, i16x8.extend_low_i8x16_s(lo));
      v128.store(at + pqStride, i16x8.extend_high_i8x16_s(lo));
      v128.store(at + 2 * pqStride, i16x8.extend_low_i8x16_s(hi));
      v128.store(at + 3 * pqStride, i16x8.extend_high_i8x16_s(hi));
    }
  }
}

/** Scores (heads in lanes) of one position from four heads' i32 sums (positions in lanes) transposed to `t`: scale × (f32(Σ)·s + minTerm). */
// @ts-ignore: decorator
@inline function channelScore(t: v128, steps: v128, minTerms: v128, scaleV: v128): v128 {
  return f32x4.mul(f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(t), steps), minTerms), scaleV);
}

/**
 * scores[(p, gp)] for positions p in [pStart, pEnd) ∩ [first, first + 8) of one group (first = a multiple of 8 in it)
 * from decodeChannelPairs' keys (kPairs) and foldChannelQueries' query (qPairs, qSteps): per quad, 4 heads × 8
 * positions of i32 sums in registers, one pmaddwd per (head, 4 positions, channel pair).
 */
// @ts-ignore: decorator
@inline function scoreChannelOctet(
  kPairs: usize, qPairs: usize, qSteps: usize, first: i32, groupFirst: i32, pStart: i32, pEnd: i32, gp: i32, headDim: i32, scale: f32, scores: usize,
): void {
  const nPairs = headDim >> 1;
  const pqStride = <usize>nPairs << 4;
  const k0p = kPairs + <usize>((first - groupFirst) >> 2) * pqStride; // positions first .. first + 3
  const k1p = k0p + pqStride; // first + 4 .. first + 7
  const scaleV = f32x4.splat(scale);
  for (let quad = 0; quad < gp >> 2; quad++) {
    let a0 = i32x4.splat(0);
    let a1 = i32x4.splat(0);
    let a2 = i32x4.splat(0);
    let a3 = i32x4.splat(0);
    let b0 = i32x4.splat(0);
    let b1 = i32x4.splat(0);
    let b2 = i32x4.splat(0);
    let b3 = i32x4.splat(0);
    const qQuad = qPairs + (<usize>(quad * nPairs) << 6);
    for (let pair = 0; pair < nPairs; pair++) {
      const k0 = v128.load(k0p + (<usize>pair << 4));
      const k1 = v128.load(k1p + (<usize>pair << 4));
      const q = qQuad + (<usize>pair << 6);
      a0 = i32x4.add(a0, i32x4.dot_i16x8_s(k0, v128.load(q)));
      a1 = i32x4.add(a1, i32x4.dot_i16x8_s(k0, v128.load(q, 16)));
      a2 = i32x4.add(a2, i32x4.dot_i16x8_s(k0, v128.load(q, 32)));
      a3 = i32x4.add(a3, i32x4.dot_i16x8_s(k0, v128.load(q, 48)));
      b0 = i32x4.add(b0, i32x4.dot_i16x8_s(k1, v128.load(q)));
      b1 = i32x4.add(b1, i32x4.dot_i16x8_s(k1, v128.load(q, 16)));
      b2 = i32x4.add(b2, i32x4.dot_i16x8_s(k1, v128.load(q, 32)));
      b3 = i32x4.add(b3, i32x4.dot_i16x8_s(k1, v128.load(q, 48)));
    }
    const steps = v128.load(qSteps + (<usize>quad << 4));
    const minTerms = v128.load(qSteps + (<usize>(gp + quad * 4) << 2));
    // heads × positions -> positions × heads
    const a01l = i32x4.shuffle(a0, a1, 0, 4, 1, 5);
    const a23l = i32x4.shuffle(a2, a3, 0, 4, 1, 5);
    const a01h = i32x4.shuffle(a0, a1, 2, 6, 3, 7);
    const a23h = i32x4.shuffle(a2, a3, 2, 6, 3, 7);
    const b01l = i32x4.shuffle(b0, b1, 0, 4, 1, 5);
    const b23l = i32x4.shuffle(b2, b3, 0, 4, 1, 5);
    const b01h = i32x4.shuffle(b0, b1, 2, 6, 3, 7);
    const b23h = i32x4.shuffle(b2, b3, 2, 6, 3, 7);
    const out = scores + (<usize>(first * gp + quad * 4) << 2);
    const rowBytes = <usize>gp << 2;
    const from = max(pStart - first, 0);
    const to = min(pEnd - first, 8);
    if (from <= 0 && to > 0) v128.store(out, channelScore(i32x4.shuffle(a01l, a23l, 0, 1, 4, 5), steps, minTerms, scaleV));
    if (from <= 1 && to > 1) v128.store(out + rowBytes, channelScore(i32x4.shuffle(a01l, a23l, 2, 3, 6, 7), steps, minTerms, scaleV));
    if (from <= 2 && to > 2) v128.store(out + 2 * rowBytes, channelScore(i32x4.shuffle(a01h, a23h, 0, 1, 4, 5), steps, minTerms, scaleV));
    if (from <= 3 && to > 3) v128.store(out + 3 * rowBytes, channelScore(i32x4.shuffle(a01h, a23h, 2, 3, 6, 7), steps, minTerms, scaleV));
    if (from <= 4 && to > 4) v128.store(out + 4 * rowBytes, channelScore(i32x4.shuffle(b01l, b23l, 0, 1, 4, 5), steps, minTerms, scaleV));
    if (from <= 5 && to > 5) v128.store(out + 5 * rowBytes, channelScore(i32x4.shuffle(b01l, b23l, 2, 3, 6, 7), steps, minTerms, scaleV));
    if (from <= 6 && to > 6) v128.store(out + 6 * rowBytes, channelScore(i32x4.shuffle(b01h, b23h, 0, 1, 4, 5), steps, minTerms, scaleV));
    if (from <= 7 && to > 7) v128.store(out + 7 * rowBytes, channelScore(i32x4.shuffle(b01h, b23h, 2, 3, 6, 7), steps, minTerms, scaleV));
  }
}

/**
 * For each of nTok token slots i (slot firstSlot + i, its range record at ranges + i·RANGE_BYTES, its rounded query at
 * prep + i·prepStride and steps in its qScale, scaleChannelQueries'): scores[(p, gp)] = scale × q·k for every position
 * p in its [pStart, pEnd), keys stored per channel in `plane` (this kv head's groups, groupBytes apart) of block
 * format `type` (a constant after inlining).
 * Each group is decoded once for all the slots whose range meets it; each slot's query is folded once per group.
 */
// @ts-ignore: decorator
@inline function scoreChannelsAll(
  type: i32, plane: usize, groupBytes: i32, nTok: i32, ranges: usize, firstSlot: i32, gp: i32, headDim: i32, scale: f32,
  prep: usize, prepStride: usize,
): void {
  const hull = rangeHull(nTok, ranges);
  const hullEnd = <i32>(hull >> 32);
  for (let g0 = (<i32>hull / KEY_GROUP) * KEY_GROUP; g0 < hullEnd; g0 += KEY_GROUP) {
    const group = plane + <usize>(g0 / KEY_GROUP) * <usize>groupBytes;
    const sd = loadChannelScales(type, group, headDim);
    decodeChannelPairs(type, group, headDim, sKGroup);
    for (let i = 0; i < nTok; i++) {
      const range = ranges + <usize>i * RANGE_BYTES;
      const pStart = load<i32>(range);
      const pEnd = load<i32>(range, 4);
      if (pEnd <= g0 || pStart >= g0 + KEY_GROUP || pStart >= pEnd) continue;
      foldChannelQueries(hasMin(type), prep + <usize>i * prepStride, qScaleOf(firstSlot + i), sd, gp, headDim, sQPairs, sQSteps);
      for (let first = g0; first < g0 + KEY_GROUP; first += 8) {
        if (first + 8 <= pStart || first >= pEnd) continue;
        scoreChannelOctet(sKGroup, sQPairs, sQSteps, first, g0, pStart, pEnd, gp, headDim, scale, scoresOf(firstSlot + i));
      }
    }
  }
}

// ---- softmax -------------------------------------------------------------------------------------------------------

/** scores ← exp(score − max per head) in place; sums[head] = Σ, in expShiftedSum_f32's order (a token slot's). */
function softmaxWeights(nPos: i32, gp: i32, scores: usize, sums: usize): void {
  const rowBytes = <usize>gp << 2;
  for (let quad = 0; quad < gp >> 2; quad++) {
    const col = scores + (<usize>quad << 4);
    let maxV = f32x4.splat(-Infinity);
    for (let p = 0; p < nPos; p++) maxV = f32x4.max(maxV, v128.load(col + <usize>p * rowBytes));
    let s0 = f32x4.splat(0);
    let s1 = f32x4.splat(0);
    let s2 = f32x4.splat(0);
    let s3 = f32x4.splat(0);
    let p = 0;
    for (; p + 4 <= nPos; p += 4) {
      const ptr = col + <usize>p * rowBytes;
      const e0 = expNonPositive_f32x4(f32x4.sub(v128.load(ptr), maxV));
      const e1 = expNonPositive_f32x4(f32x4.sub(v128.load(ptr + rowBytes), maxV));
      const e2 = expNonPositive_f32x4(f32x4.sub(v128.load(ptr + 2 * rowBytes), maxV));
      const e3 = expNonPositive_f32x4(f32x4.sub(v128.load(ptr + 3 * rowBytes), maxV));
      v128.store(ptr, e0);
      v128.store(ptr + rowBytes, e1);
      v128.store(ptr + 2 * rowBytes, e2);
      v128.store(ptr + 3 * rowBytes, e3);
      s0 = f32x4.add(s0, e0);
      s1 = f32x4.add(s1, e1);
      s2 = f32x4.add(s2, e2);
      s3 = f32x4.add(s3, e3);
    }
    let sum = f32x4.add(f32x4.add(f32x4.add(s0, s1), s2), s3);
    for (; p < nPos; p++) {
      const ptr = col + <usize>p * rowBytes;
      const e = expNonPositive_f32x4(f32x4.sub(v128.load(ptr), maxV));
      v128.store(ptr, e);
      sum = f32x4.add(sum, e);
    }
    v128.store(sums + (<usize>quad << 4), sum);
  }
}

// ---- values --------------------------------------------------------------------------------------------------------

/** Decode `count` V rows' kv slices (rows rowBytes apart) of block format `type` to f32 (count, headDim) at dst. */
// @ts-ignore: decorator
@inline function decodeVInt(type: i32, slice: usize, rowBytes: i32, count: i32, headDim: i32, dst: usize): void {
  const bytes = blockBytes(type);
  const nBlocks = headDim >> 5;
  for (let t = 0; t < count; t++) {
    const row = slice + <usize>t * <usize>rowBytes;
    const outRow = dst + (<usize>(t * headDim) << 2);
    for (let b = 0; b < nBlocks; b++) {
      const block = row + <usize>b * bytes;
      const d = f32x4.splat(blockScale(type, block));
      const m = hasMin(type) ? f32x4.splat(loadF16(block + 2)) : f32x4.splat(0);
      const o = outRow + (<usize>b << 7);
      const pairs = blockPairs(type, block);
      const qh = codebookQh(codebookOf(type), block); // zeros without a load where there is no qh
      for (let half = 0; half < 2; half++) {
        const q = halfQuants(type, block, pairs, qh, half);
        const p = o + (<usize>half << 6);
        if (hasMin(type)) dequantQuants16Min(p, q, d, m);
        else dequantQuants16(p, q, d);
      }
    }
  }
}

/**
 * The values' register tiles, one generic shape for float and integer sums (`integer`, a constant after inlining):
 * per quad and 8 channels, 4 heads × 8 channels of sums in registers over `n` steps, step i reading values at
 * v + i·vStride + c8·32 (two v128) and each head's weight splatted from w + quad·wQuadStride + (c8 / 4)·wBlockStride
 * + i·wStride + 4h.
 *   float:   the sums start from acc, each step adds w·v (f32; a position, in order: each element sees acc + w·v, as
 *            axpy does), and are stored back;
 *   integer: the sums start from 0, each step adds pmaddwd(v, w) (i16 pairs: two positions), and acc += f32(sum) ·
 *            step, the head's step at steps + ((c8 / 4)·gp/4 + quad)·16 + 4h.
 *   acc: (gp, headDim) f32
 */
// @ts-ignore: decorator
@inline function registerTileSums(
  integer: bool, acc: usize, v: usize, vStride: usize, w: usize, wStride: usize, wQuadStride: usize, wBlockStride: usize,
  n: i32, gp: i32, headDim: i32, steps: usize,
): void {
  const headBytes = <usize>headDim << 2;
  const nQuads = gp >> 2;
  for (let quad = 0; quad < nQuads; quad++) {
    const accQuad = acc + <usize>(quad * 4) * headBytes;
    for (let c8 = 0; c8 < headDim >> 3; c8++) {
      const o0 = accQuad + (<usize>c8 << 5);
      const o1 = o0 + headBytes;
      const o2 = o1 + headBytes;
      const o3 = o2 + headBytes;
      const zero = i32x4.splat(0);
      let a0 = integer ? zero : v128.load(o0);
      let b0 = integer ? zero : v128.load(o0, 16);
      let a1 = integer ? zero : v128.load(o1);
      let b1 = integer ? zero : v128.load(o1, 16);
      let a2 = integer ? zero : v128.load(o2);
      let b2 = integer ? zero : v128.load(o2, 16);
      let a3 = integer ? zero : v128.load(o3);
      let b3 = integer ? zero : v128.load(o3, 16);
      let vp = v + (<usize>c8 << 5);
      let wp = w + <usize>quad * wQuadStride + <usize>(c8 >> 2) * wBlockStride;
      for (let i = 0; i < n; i++) {
        const lo = v128.load(vp);
        const hi = v128.load(vp, 16);
        const w0 = v128.load32_splat(wp);
        const w1 = v128.load32_splat(wp, 4);
        const w2 = v128.load32_splat(wp, 8);
        const w3 = v128.load32_splat(wp, 12);
        a0 = mulAdd(integer, a0, w0, lo);
        b0 = mulAdd(integer, b0, w0, hi);
        a1 = mulAdd(integer, a1, w1, lo);
        b1 = mulAdd(integer, b1, w1, hi);
        a2 = mulAdd(integer, a2, w2, lo);
        b2 = mulAdd(integer, b2, w2, hi);
        a3 = mulAdd(integer, a3, w3, lo);
        b3 = mulAdd(integer, b3, w3, hi);
        vp += vStride;
        wp += wStride;
      }
      if (integer) {
        const step = v128.load(steps + (<usize>((c8 >> 2) * nQuads + quad) << 4));
        addScaled(o0, a0, b0, f32x4.splat(f32x4.extract_lane(step, 0)));
        addScaled(o1, a1, b1, f32x4.splat(f32x4.extract_lane(step, 1)));
        addScaled(o2, a2, b2, f32x4.splat(f32x4.extract_lane(step, 2)));
        addScaled(o3, a3, b3, f32x4.splat(f32x4.extract_lane(step, 3)));
      } else {
        v128.store(o0, a0);
        v128.store(o0, b0, 16);
        v128.store(o1, a1);
        v128.store(o1, b1, 16);
        v128.store(o2, a2);
        v128.store(o2, b2, 16);
        v128.store(o3, a3);
        v128.store(o3, b3, 16);
      }
    }
  }
}

/** sum + w·v: f32 multiply and add, or (integer) i32 add of pmaddwd over v's i16 pairs. */
// @ts-ignore: decorator
@inline function mulAdd(integer: bool, sum: v128, w: v128, v: v128): v128 {
  return integer ? i32x4.add(sum, i32x4.dot_i16x8_s(v, w)) : f32x4.add(sum, f32x4.mul(w, v));
}

/** 8 f32 at `at` += f32(lo, hi) · step. */
// @ts-ignore: decorator
@inline function addScaled(at: usize, lo: v128, hi: v128, step: v128): void {
  v128.store(at, f32x4.add(v128.load(at), f32x4.mul(f32x4.convert_i32x4_s(lo), step)));
  v128.store(at, f32x4.add(v128.load(at, 16), f32x4.mul(f32x4.convert_i32x4_s(hi), step)), 16);
}

/**
 * acc[(head, headDim)] += Σ_t w[t][head] · v[t] for a tile of `count` positions in float (registerTileSums).
 *   v: (count) rows of headDim f32, vStride bytes apart;  w: (count, gp) f32 weights (rows gp·4 bytes apart)
 */
function accumulateTile(acc: usize, v: usize, vStride: i32, w: usize, count: i32, gp: i32, headDim: i32): void {
  registerTileSums(false, acc, v, <usize>vStride, w, <usize>gp << 2, 16, 0, count, gp, headDim, 0);
}

// ---- values of kvsplit's codebook formats: integer sums ---------------------------------------------------------

// A codebook V value is v[t][c] = d[t][b]·L[t][c] (block b's scale, an int8 level), so Σ_t w[t]·v[t][c] =
// Σ_t x[t][b]·L[t][c] with x = w·d. Per tile of V_TILE positions, token slot, block b and head, x is rounded to i16
// against the head's largest weight times the block's largest |d| over the slot's positions in the tile (a bound on
// |x|; roundTileWeights has the exact float steps), and pmaddwd sums two positions per instruction:
//   xq[t] ≈ x[t] / step   (rounded half to even; 0 outside the slot's positions, and for the padding row of an odd tile)
//   acc[c] += f32(Σ_t xq[t]·L[t][c]) · step
// The integer sum is exact (|Σ| <= V_TILE · 32767 · 127 < 2^31); against float sums each term is off by at most half
// a step times |L[t][c]| (and f32 roundings), which test/helpers/kv-reference.ts bounds. (Before: the tile was
// decoded to f32 and summed as acc += w·v per position, as llama.cpp's formats still are: twice the multiply-adds.)

/** 16 int8 of each of two positions (a, b) -> four i16x8 at dst: channels 4j .. 4j + 3 as [a, b] pairs at dst + 16·j. */
// @ts-ignore: decorator
@inline function storePositionPairs(dst: usize, a: v128, b: v128): void {
  const lo = i8x16.shuffle(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const hi = i8x16.shuffle(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  v128.store(dst, i16x8.extend_low_i8x16_s(lo));
  v128.store(dst, i16x8.extend_high_i8x16_s(lo), 16);
  v128.store(dst, i16x8.extend_low_i8x16_s(hi), 32);
  v128.store(dst, i16x8.extend_high_i8x16_s(hi), 48);
}

/**
 * Decode `count` V rows' kv slices (rows rowBytes apart) of codebook format `type` into position pairs: pair k
 * (positions 2k, 2k + 1) at dst + k·headDim·4, its channels 4j .. 4j + 3 at + 16·j as i16 [L(2k, c), L(2k + 1, c)];
 * block b's scale of position t at scales[t·nBlocks + b]. An odd count's last pair has a zero second position (levels
 * and scale); the row after the tile is not read.
 *   dst: ((count + 1) / 2, headDim / 4, 4 × 2) i16;  scales: (count rounded up to even, nBlocks) f32
 */
// @ts-ignore: decorator
@inline function decodeVPairs(type: i32, slice: usize, rowBytes: i32, count: i32, headDim: i32, dst: usize, scales: usize): void {
  const bytes = blockBytes(type);
  const nBlocks = headDim >> 5;
  const cb = codebookOf(type);
  for (let t = 0; t < count; t += 2) {
    const rowA = slice + <usize>t * <usize>rowBytes;
    const out = dst + (<usize>(t >> 1) * <usize>headDim << 2);
    for (let b = 0; b < nBlocks; b++) {
      const blockA = rowA + <usize>b * bytes;
      const pairsA = blockPairs(type, blockA);
      const qhA = codebookQh(cb, blockA);
      let b0 = i8x16.splat(0);
      let b1 = i8x16.splat(0);
      let dB: f32 = 0;
      if (t + 1 < count) {
        const blockB = blockA + <usize>rowBytes;
        const pairsB = blockPairs(type, blockB);
        const qhB = codebookQh(cb, blockB);
        b0 = halfQuants(type, blockB, pairsB, qhB, 0);
        b1 = halfQuants(type, blockB, pairsB, qhB, 1);
        dB = blockScale(type, blockB);
      }
      store<f32>(scales + (<usize>(t * nBlocks + b) << 2), blockScale(type, blockA));
      store<f32>(scales + (<usize>((t + 1) * nBlocks + b) << 2), dB);
      const o = out + (<usize>b << 7);
      storePositionPairs(o, halfQuants(type, blockA, pairsA, qhA, 0), b0);
      storePositionPairs(o + 64, halfQuants(type, blockA, pairsA, qhA, 1), b1);
    }
  }
}

/**
 * A head whose weights in a tile are all below 2^-64 (next to the largest weight, 1) gets no share of its values:
 * 32767 / wTop would overflow f32 for weights near exp's smallest, 2^-125, and the share is at most V_TILE · 2^-64 of
 * a value.
 */
const WEIGHT_FLOOR: f32 = 5.421010862427522e-20; // 2^-64

/**
 * One token slot's weights for tile positions [first, end) rounded as above: w is its softmax weights at tile position
 * 0 ((position, gp) f32, each in [0, 1]), scales decodeVPairs' block scales. With wTop the head's largest weight and
 * dTop the block's largest |d| over [first, end) (found with integer maxima of the f32 bits, which order non-negative
 * floats; NaN sorts above every number, so a NaN weight or scale gives a NaN step, as float sums would give NaN):
 *   dn[t][b] = d[t][b] · f32(1 / dTop)        (normScales, (V_TILE, nBlocks) f32, then dTop per block; 0 where
 *                                              dTop is 0)
 *   xq[t] = round((w[t] · f32(32767 / wTop)) · dn[t][b]),   step = f32(wTop / 32767) · dTop
 * (xq = 0 where wTop < WEIGHT_FLOOR).
 * For block b and quad, pair k's head h gets [xq(2k), xq(2k + 1)] (i16) at weights + ((b·gp/4 + quad)·V_TILE/2 +
 * k)·16 + 4h, its step at steps + ((b·gp/4 + quad)·4 + h)·4 (f32). Pairs first / 2 .. (end + 1) / 2 − 1 are written.
 */
// @ts-ignore: decorator
@inline function roundTileWeights(
  w: usize, gp: i32, nBlocks: i32, first: i32, end: i32, scales: usize, normScales: usize, weights: usize, steps: usize,
): void {
  const nQuads = gp >> 2;
  const wStride = <usize>gp << 2;
  const from = first & ~1;
  const to = (end + 1) & ~1; // the pairs' positions; their scales exist (decodeVPairs writes whole pairs)
  const dTops = normScales + (<usize>(V_TILE * nBlocks) << 2); // (nBlocks) f32 after dn
  for (let b = 0; b < nBlocks; b++) {
    let dTop: u32 = 0;
    for (let t = first; t < end; t++) dTop = max(dTop, load<u32>(scales + (<usize>(t * nBlocks + b) << 2)) & 0x7fffffff);
    const top = reinterpret<f32>(dTop);
    const inv: f32 = dTop != 0 ? <f32>1 / top : 0;
    store<f32>(dTops + (<usize>b << 2), top);
    for (let t = from; t < to; t++) {
      const at = <usize>(t * nBlocks + b) << 2;
      store<f32>(normScales + at, load<f32>(scales + at) * inv);
    }
  }
  const zero = f32x4.splat(0);
  const roundBias = f32x4.splat(12582912.0); // 1.5·2^23: the rounded integer in an f32's low bits (roundToI16AtMax)
  for (let quad = 0; quad < nQuads; quad++) {
    const wQuad = w + (<usize>quad << 4);
    let wTop = zero;
    for (let t = first; t < end; t++) wTop = i32x4.max_s(wTop, v128.load(wQuad + <usize>t * wStride));
    const invW = v128.and(f32x4.div(f32x4.splat(32767), wTop), f32x4.ge(wTop, f32x4.splat(WEIGHT_FLOOR)));
    const wStep = f32x4.div(wTop, f32x4.splat(32767));
    for (let b = 0; b < nBlocks; b++) {
      v128.store(steps + (<usize>(b * nQuads + quad) << 4), f32x4.mul(wStep, v128.load32_splat(dTops + (<usize>b << 2))));
    }
    for (let t = from; t < to; t += 2) {
      const w0 = t >= first ? f32x4.mul(v128.load(wQuad + <usize>t * wStride), invW) : zero;
      const w1 = t + 1 < end ? f32x4.mul(v128.load(wQuad + <usize>(t + 1) * wStride), invW) : zero;
      const dn = normScales + (<usize>(t * nBlocks) << 2);
      let out = weights + (<usize>(quad * (V_TILE >> 1) + (t >> 1)) << 4);
      for (let b = 0; b < nBlocks; b++) {
        const r0 = f32x4.add(f32x4.mul(w0, v128.load32_splat(dn + (<usize>b << 2))), roundBias);
        const r1 = f32x4.add(f32x4.mul(w1, v128.load32_splat(dn + (<usize>(nBlocks + b) << 2))), roundBias);
        v128.store(out, v128.or(v128.and(r0, vconst(80)), i32x4.shl(r1, 16)));
        out += <usize>(nQuads * (V_TILE >> 1)) << 4;
      }
    }
  }
}

/**
 * acc[(head, headDim)] += Σ_k f32(Σ pmaddwd(pairs[k], weights[k])) · step over pairs [k0, k1) of a tile (decodeVPairs,
 * roundTileWeights) in integers (registerTileSums).
 *   acc: (gp, headDim) f32;  pairs: (V_TILE / 2, headDim / 4, 4 × 2) i16;  weights: (headDim / 32, gp / 4, V_TILE / 2,
 *   4) × 2 i16;  steps: (headDim / 32, gp) f32
 */
function accumulateCodebookTile(acc: usize, pairs: usize, weights: usize, steps: usize, k0: i32, k1: i32, gp: i32, headDim: i32): void {
  const pairBytes = <usize>headDim << 2;
  const quadBytes = <usize>(V_TILE >> 1) << 4;
  registerTileSums(
    true, acc, pairs + <usize>k0 * pairBytes, pairBytes, weights + (<usize>k0 << 4), 16, quadBytes, <usize>(gp >> 2) * quadBytes,
    k1 - k0, gp, headDim, steps,
  );
}

/**
 * For each of nTok token slots i (slot firstSlot + i, its range record at ranges + i·RANGE_BYTES): acc += Σ_p w[p] ·
 * V[p] over the positions p of its [pStart, pEnd) in order, for V of `type` (a constant after inlining); position p's
 * row is at vSlice + p·vRowBytes. Each tile of rows is decoded once for all the slots; codebook formats' tiles into
 * position pairs summed in integers (decodeVPairs, roundTileWeights, accumulateCodebookTile).
 */
// @ts-ignore: decorator
@inline function accumulateAll(type: i32, vSlice: usize, vRowBytes: i32, nTok: i32, ranges: usize, firstSlot: i32, gp: i32, headDim: i32): void {
  const hull = rangeHull(nTok, ranges);
  const pEnd = <i32>(hull >> 32);
  for (let p0 = <i32>hull; p0 < pEnd; p0 += V_TILE) {
    const count = min(V_TILE, pEnd - p0);
    const rows = vSlice + <usize>p0 * <usize>vRowBytes;
    if (codebookOf(type) != 0) {
      decodeVPairs(type, rows, vRowBytes, count, headDim, sVDec, sVScales);
      for (let i = 0; i < nTok; i++) {
        const range = ranges + <usize>i * RANGE_BYTES;
        const first = max(p0, load<i32>(range)) - p0;
        const end = min(p0 + count, load<i32>(range, 4)) - p0;
        if (first >= end) continue;
        const slot = firstSlot + i;
        roundTileWeights(scoresOf(slot) + (<usize>(p0 * gp) << 2), gp, headDim >> 5, first, end, sVScales, sVNormScales, sVWeights, sVSteps);
        accumulateCodebookTile(accOf(slot), sVDec, sVWeights, sVSteps, first >> 1, (end + 1) >> 1, gp, headDim);
      }
      continue;
    }
    // the tile's values: rows as they are (f32), else decoded to (count, headDim) f32
    let values = rows;
    let valueStride = vRowBytes;
    if (type == T_F16 || type == T_BF16) {
      for (let t = 0; t < count; t++) {
        decodeHalfRow(type, rows + <usize>t * <usize>vRowBytes, sVDec + (<usize>(t * headDim) << 2), headDim);
      }
    } else if (type != T_F32) {
      decodeVInt(type, rows, vRowBytes, count, headDim, sVDec);
    }
    if (type != T_F32) {
      values = sVDec;
      valueStride = headDim << 2;
    }
    for (let i = 0; i < nTok; i++) {
      const range = ranges + <usize>i * RANGE_BYTES;
      const from = max(p0, load<i32>(range));
      const to = min(p0 + count, load<i32>(range, 4));
      if (from >= to) continue;
      const slot = firstSlot + i;
      const w = scoresOf(slot) + (<usize>(from * gp) << 2);
      accumulateTile(accOf(slot), values + <usize>(from - p0) * <usize>valueStride, valueStride, w, to - from, gp, headDim);
    }
  }
}

// ---- exact rows (window, sinks) ---------------------------------------------------------------------------------

/**
 * scoreAll over positions [pStart, pEnd) of kv head g's exact rows that `xd` describes (f16, or q8_0 when q8), for
 * token slot `slot`, the query prepared in sQPrepExact through the same format.
 */
// @ts-ignore: decorator
@inline function scoreExactRows(q8: bool, xd: usize, g: i32, pStart: i32, pEnd: i32, slot: i32, gp: i32, headDim: i32, scale: f32): void {
  const slice = <usize>descI32(xd, D_K_ROWS) + <usize>g * <usize>descI32(xd, D_K_HEAD_STRIDE);
  const rowBytes = descI32(xd, D_K_ROW_BYTES);
  setRange(sExactRange, pStart, pEnd, 0);
  if (q8) scoreAll(T_Q8_0, slice, rowBytes, 1, sExactRange, slot, gp, headDim, scale, sQPrepExact, 0);
  else scoreAll(T_F16, slice, rowBytes, 1, sExactRange, slot, gp, headDim, scale, sQPrepExact, 0);
}

/**
 * accumulateAll over positions [pStart, pEnd) of kv head g's exact V rows that `xd` describes (f16, or q8_0 when q8),
 * for token slot `slot`.
 */
// @ts-ignore: decorator
@inline function accumulateExactRows(q8: bool, xd: usize, g: i32, pStart: i32, pEnd: i32, slot: i32, gp: i32, headDim: i32): void {
  const slice = <usize>descI32(xd, D_V_ROWS) + <usize>g * <usize>descI32(xd, D_V_HEAD_STRIDE);
  const rowBytes = descI32(xd, D_V_ROW_BYTES);
  setRange(sExactRange, pStart, pEnd, 0);
  if (q8) accumulateAll(T_Q8_0, slice, rowBytes, 1, sExactRange, slot, gp, headDim);
  else accumulateAll(T_F16, slice, rowBytes, 1, sExactRange, slot, gp, headDim);
}

/**
 * The packed keys of every token slot of an item (sRanges, sQPrep), of block format `type`: rows (scoreAll) or keys
 * per channel (scoreChannelsAll).
 */
// @ts-ignore: decorator
@inline function scorePacked(
  type: i32, channels: bool, kSlice: usize, kRowBytes: i32, kGroupBytes: i32, nTok: i32, gp: i32, headDim: i32, scale: f32,
): void {
  if (channels) scoreChannelsAll(type, kSlice, kGroupBytes, nTok, sRanges, 0, gp, headDim, scale, sQPrep, sQPrepStride);
  else scoreAll(type, kSlice, kRowBytes, nTok, sRanges, 0, gp, headDim, scale, sQPrep, sQPrepStride);
}

// ---- the kernel ------------------------------------------------------------------------------------------------------

/**
 * Grouped attention over a batch: item i covers kv head g = i % nKvHeads and the tile i / nKvHeads of tokensPerItem
 * tokens (the batch's last tile may be shorter: nTokens in all), or token i / nKvHeads alone when tokensPerItem <= 1
 * (then nTokens is not read); at most TOKEN_TILE (attendTokenTile; more traps). The tokens of an item share each
 * decoded K and V row; every token's floating-point operations are the same as alone. Token t's query row is
 * q + t·nHeads·headDim·4 and it attends positions [0, firstPos + t]. Writes the group's query heads
 * g·group .. (g+1)·group − 1 of out. `desc`: the layer descriptor (attention-common.ts); scratch: this thread's
 * attendScratchBytes bytes. Rotation (desc rotK, rotV) is applied per head: q rotated before the partner conversion,
 * the output rotated back at the end.
 * Exact recent window (window > 0): token t's last `window` positions [firstPos + t + 1 − window, firstPos + t] are
 * read from the f16 (or q8_0) rows `xdesc` describes (its kRows / vRows are based so that position p's row is at
 * base + p·stride, in the same rotated space as the packed rows), the earlier ones from the packed rows; one softmax
 * over both. Exact sinks (sinks > 0): positions [0, sinks) are read from the rows `sdesc` describes (the same way, the
 * same format), before the window takes over; ranges in position order: sinks, packed, window; V accumulated in
 * that order too.
 *   q, out: (nTokens, nHeads·headDim) f32
 */
export function attendGrouped_packed(
  itemStart: i32, itemEnd: i32, scratch: usize, desc: usize, q: usize, out: usize, firstPos: i32, xdesc: usize, window: i32,
  sdesc: usize, sinks: i32, nTokens: i32, tokensPerItem: i32,
): void {
  const nHeads = descI32(desc, D_N_HEADS);
  const nKvHeads = descI32(desc, D_N_KV_HEADS);
  const headDim = descI32(desc, D_HEAD_DIM);
  const scale = load<f32>(desc + D_SCALE);
  const kType = descI32(desc, D_K_TYPE);
  const partner = descI32(desc, D_K_PARTNER);
  const vType = descI32(desc, D_V_TYPE);
  const kRowBytes = descI32(desc, D_K_ROW_BYTES);
  const vRowBytes = descI32(desc, D_V_ROW_BYTES);
  const rotK = descI32(desc, D_ROT_K);
  const rotV = descI32(desc, D_ROT_V);
  const headMajor = descI32(desc, D_HEAD_MAJOR) != 0;
  const kGroupBytes = descI32(desc, D_K_GROUP_BYTES);
  const kHeadStride = <usize>descI32(desc, D_K_HEAD_STRIDE);
  const vHeadStride = <usize>descI32(desc, D_V_HEAD_STRIDE);
  const group = nHeads / nKvHeads;
  const gp = paddedGroup(group);
  layoutScratch(scratch, group, headDim, descI32(desc, D_MAX_POS));
  const intPartner = partner == T_Q8_0 || partner == T_Q8_1;
  const headBytes = <usize>headDim << 2;
  const exact = xdesc != 0 && window > 0;
  const nSinks = sdesc != 0 ? sinks : 0;
  // the exact rows' format: q8_0 or f16 (both descriptors hold the cache's one)
  const exactQ8 = (exact ? descI32(xdesc, D_K_TYPE) : nSinks > 0 ? descI32(sdesc, D_K_TYPE) : T_F16) == T_Q8_0;
  const channels = kGroupBytes != 0;
  if (tokensPerItem > TOKEN_TILE) unreachable(); // the scratch has TOKEN_TILE token slots
  const perItem = tokensPerItem > 1 ? tokensPerItem : 1;
  for (let item = itemStart; item < itemEnd; item++) {
    const g = item % nKvHeads;
    const t0 = (item / nKvHeads) * perItem;
    const nTok = perItem > 1 ? min(perItem, nTokens - t0) : 1;
    const kSlice = <usize>descI32(desc, D_K_ROWS) + (headMajor ? <usize>g * kHeadStride : sliceBytes(kType, g * headDim));
    const vSlice = <usize>descI32(desc, D_V_ROWS) + (headMajor ? <usize>g * vHeadStride : sliceBytes(vType, g * headDim));

    // per token (slot j): its ranges (positions [0, sHi) from the sinks, [sHi, lo) from the packed rows, [lo, nPos)
    // from the exact window), its exact rows scored, its query prepared for the packed keys
    for (let j = 0; j < nTok; j++) {
      const nPos = firstPos + t0 + j + 1;
      const qGroup = q + (<usize>(t0 + j) * <usize>nHeads + <usize>(g * group)) * headBytes;
      const lo = nPos <= 0 ? 0 : exact ? max(0, nPos - window) : nPos;
      const sHi = min(nSinks, lo);
      setRange(sRanges + <usize>j * RANGE_BYTES, sHi, lo, nPos);
      if (nPos <= 0) continue;
      // the exact rows first, scored as an f16 or q8_0 cache scores them (the query through f16 or q8_0; a q8_0
      // query's block scales live in the slot's qScale, which the packed keys' query then takes over)
      if (sHi > 0 || lo < nPos) {
        prepareQueries(qGroup, group, headDim, exactQ8 ? T_Q8_0 : T_F16, exactQ8, rotK, sQPrepExact, qScaleOf(j));
        if (sHi > 0) scoreExactRows(exactQ8, sdesc, g, 0, sHi, j, gp, headDim, scale);
        if (lo < nPos) scoreExactRows(exactQ8, xdesc, g, lo, nPos, j, gp, headDim, scale);
      }
      // the packed keys' query: in K's dot partner, or for keys per channel rounded to i16 at its maximum (its steps
      // in qScale), folded with each group's scales in scoreChannelsAll
      const prep = sQPrep + <usize>j * sQPrepStride;
      prepareQueries(qGroup, group, headDim, channels ? T_F32 : partner, !channels && intPartner, rotK, prep, qScaleOf(j));
      if (channels) scaleChannelQueries(prep, gp, headDim, qScaleOf(j));
    }

    // the packed keys of every token in one pass (each row, or each group of keys per channel, decoded once)
    switch (kType) {
      case T_F32: scoreAll(T_F32, kSlice, kRowBytes, nTok, sRanges, 0, gp, headDim, scale, sQPrep, sQPrepStride); break;
      case T_F16: scoreAll(T_F16, kSlice, kRowBytes, nTok, sRanges, 0, gp, headDim, scale, sQPrep, sQPrepStride); break;
      case T_BF16: scoreAll(T_BF16, kSlice, kRowBytes, nTok, sRanges, 0, gp, headDim, scale, sQPrep, sQPrepStride); break;
      case T_Q8_0: scorePacked(T_Q8_0, channels, kSlice, kRowBytes, kGroupBytes, nTok, gp, headDim, scale); break;
      case T_Q5_1: scorePacked(T_Q5_1, channels, kSlice, kRowBytes, kGroupBytes, nTok, gp, headDim, scale); break;
      case T_Q5_0: scorePacked(T_Q5_0, channels, kSlice, kRowBytes, kGroupBytes, nTok, gp, headDim, scale); break;
      case T_Q4_1: scorePacked(T_Q4_1, channels, kSlice, kRowBytes, kGroupBytes, nTok, gp, headDim, scale); break;
      case T_Q4_0: scorePacked(T_Q4_0, channels, kSlice, kRowBytes, kGroupBytes, nTok, gp, headDim, scale); break;
      case T_IQ4_NL: scorePacked(T_IQ4_NL, channels, kSlice, kRowBytes, kGroupBytes, nTok, gp, headDim, scale); break;
      case T_IQ3_NL: scorePacked(T_IQ3_NL, channels, kSlice, kRowBytes, kGroupBytes, nTok, gp, headDim, scale); break;
      case T_IQ2_NL: scorePacked(T_IQ2_NL, channels, kSlice, kRowBytes, kGroupBytes, nTok, gp, headDim, scale); break;
      case T_IQ3_E8: scorePacked(T_IQ3_E8, channels, kSlice, kRowBytes, kGroupBytes, nTok, gp, headDim, scale); break;
      case T_IQ2_E8: scorePacked(T_IQ2_E8, channels, kSlice, kRowBytes, kGroupBytes, nTok, gp, headDim, scale); break;
    }

    // per token: softmax, then the sinks' values
    for (let j = 0; j < nTok; j++) {
      const range = sRanges + <usize>j * RANGE_BYTES;
      const nPos = load<i32>(range, 8);
      if (nPos <= 0) continue;
      softmaxWeights(nPos, gp, scoresOf(j), sumsOf(j));
      memory.fill(accOf(j), 0, <usize>gp * headBytes);
      const sHi = load<i32>(range);
      if (sHi > 0) accumulateExactRows(exactQ8, sdesc, g, 0, sHi, j, gp, headDim);
    }

    // the packed values of every token in one pass (each tile of rows decoded once)
    switch (vType) {
      case T_F32: accumulateAll(T_F32, vSlice, vRowBytes, nTok, sRanges, 0, gp, headDim); break;
      case T_F16: accumulateAll(T_F16, vSlice, vRowBytes, nTok, sRanges, 0, gp, headDim); break;
      case T_BF16: accumulateAll(T_BF16, vSlice, vRowBytes, nTok, sRanges, 0, gp, headDim); break;
      case T_Q8_0: accumulateAll(T_Q8_0, vSlice, vRowBytes, nTok, sRanges, 0, gp, headDim); break;
      case T_Q5_1: accumulateAll(T_Q5_1, vSlice, vRowBytes, nTok, sRanges, 0, gp, headDim); break;
      case T_Q5_0: accumulateAll(T_Q5_0, vSlice, vRowBytes, nTok, sRanges, 0, gp, headDim); break;
      case T_Q4_1: accumulateAll(T_Q4_1, vSlice, vRowBytes, nTok, sRanges, 0, gp, headDim); break;
      case T_Q4_0: accumulateAll(T_Q4_0, vSlice, vRowBytes, nTok, sRanges, 0, gp, headDim); break;
      case T_IQ4_NL: accumulateAll(T_IQ4_NL, vSlice, vRowBytes, nTok, sRanges, 0, gp, headDim); break;
      case T_IQ3_NL: accumulateAll(T_IQ3_NL, vSlice, vRowBytes, nTok, sRanges, 0, gp, headDim); break;
      case T_IQ2_NL: accumulateAll(T_IQ2_NL, vSlice, vRowBytes, nTok, sRanges, 0, gp, headDim); break;
      case T_IQ3_E8: accumulateAll(T_IQ3_E8, vSlice, vRowBytes, nTok, sRanges, 0, gp, headDim); break;
      case T_IQ2_E8: accumulateAll(T_IQ2_E8, vSlice, vRowBytes, nTok, sRanges, 0, gp, headDim); break;
    }

    // per token: the window's values, then out = acc / sum per head (the per-head path's inv = 1/sum), rotated back
    // when V is rotated
    for (let j = 0; j < nTok; j++) {
      const range = sRanges + <usize>j * RANGE_BYTES;
      const lo = load<i32>(range, 4);
      const nPos = load<i32>(range, 8);
      const outGroup = out + (<usize>(t0 + j) * <usize>nHeads + <usize>(g * group)) * headBytes;
      if (nPos <= 0) {
        memory.fill(outGroup, 0, <usize>group * headBytes);
        continue;
      }
      if (lo < nPos) accumulateExactRows(exactQ8, xdesc, g, lo, nPos, j, gp, headDim);
      const acc = accOf(j);
      const sums = sumsOf(j);
      for (let h = 0; h < group; h++) {
        const sum = load<f32>(sums + (<usize>h << 2));
        const inv = f32x4.splat(sum > 0 ? <f32>1 / sum : 0);
        const from = acc + <usize>h * headBytes;
        const to = outGroup + <usize>h * headBytes;
        for (let c = 0; c < headDim >> 2; c++) v128.store(to + (<usize>c << 4), f32x4.mul(v128.load(from + (<usize>c << 4)), inv));
        if (rotV > 0) fwht_f32(to, to, rotV, headDim / rotV);
      }
    }
  }
}

/** Bytes from a row's start to value `start` (a block boundary) in format `type`. */
// @ts-ignore: decorator
@inline function sliceBytes(type: i32, start: i32): usize {
  if (type == T_F32) return <usize>start << 2;
  if (type == T_F16 || type == T_BF16) return <usize>start << 1;
  return <usize>(start >> 5) * blockBytes(type);
}
