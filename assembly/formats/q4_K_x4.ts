// q4_K weights repacked four rows at a time ("q4_K_x4"), for products whose i32 lanes are the four rows: a relaxed dot
// of four q8 values (splatted) against four levels from each row lands row r's partial sum in lane r, so a tile's
// sub-block sums need no horizontal adds, and its scales decode for four rows at once. Same bytes as four q4_K rows
// (144 bytes per row and super-block), so a matrix (rows a multiple of 4) is repacked in place at load (repack_q4_K_x4).
//
// Tile = four rows r0..r3 (4t .. 4t + 3): for each super-block b, 576 bytes:
//   [0, 8)      (4) fp16 d of rows r0..r3           [8, 16)   (4) fp16 dmin
//   [16, 32)    scale bytes 0-3 (q4_K header bytes 4-7): row r's byte j at 16 + 4j + r
//   [32, 48)    scale bytes 4-7 (the mins' bytes) in pairs: row r's byte 4 + 2h + i at 32 + 8h + 2r + i
//   [48, 64)    scale bytes 8-11: row r's byte 8 + j at 48 + 4j + r
//   [64, 576)   nibbles: vector (c, m) at 64 + 128c + 16m (c: 64-value chunk 0..3, m: 0..7) holds, at 4r + i, row r's
//               q4_K nibble byte 32c + 4m + i (low nibble: value 64c + 4m + i, high: value 64c + 32 + 4m + i)
// The integers are kquants.ts's (isum = Σ_j scale_j × Σ level × q8, summs = Σ_j min_j × bsum_j) and the super-block
// term and the rows' f32 sums follow matvecK's operations in its order, so matvec_q4_K_x4 equals matvec_q4_K on the
// rows before repacking, bit for bit, in either build.
import { dotLevelsAddEither, f16BitsToF32x4Subnormals, lookup16 } from "./common";
import { Q8_K_BYTES } from "./kquants";
import { moveTiles } from "./tiles";

const ROW_BLOCK: usize = 144; // q4_K bytes per row and super-block
const TILE_BLOCK: usize = 576; // four rows' super-block

/** Lanes 4j + r (sub-block j, row r) -> pair order, lane 8h + 2r + i taking lane 4(2h + i) + r. */
const TO_PAIRS: usize = memory.data<u8>([0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15], 16);
const U8_15: usize = memory.data<u8>([15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15], 16);
const U8_63: usize = memory.data<u8>([63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63], 16);
const U8_0x30: usize = memory.data<u8>([48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48], 16);

/** low4 | the top two bits of each byte of `top` in bits 4-5 (i16 shift; the mask drops what crosses bytes). */
// @ts-ignore: decorator
@inline function withTopBits(low4: v128, top: v128): v128 {
  return v128.or(low4, v128.and(i16x8.shr_u(top, 2), v128.load(U8_0x30)));
}

/** Sub-blocks 2c, 2c + 1's scales (from the u8 lanes 4j + r of sub-blocks 4·(c >> 1) + j) as two i32x4 over the rows. */
// @ts-ignore: decorator
@inline function chunkScales(scales: v128, c: i32, second: bool): v128 {
  const pair = (c & 1) == 0 ? i16x8.extend_low_i8x16_u(scales) : i16x8.extend_high_i8x16_u(scales);
  return second ? i32x4.extend_high_i16x8_u(pair) : i32x4.extend_low_i16x8_u(pair);
}

/**
 * The high nibbles' levels of v (a tile vector: row r's four levels at 4r) given lowMask() (i16 shift; the mask drops
 * what crosses bytes). The low nibbles' are v & lowMask().
 */
// @ts-ignore: decorator
@inline function highLevels(v: v128, low15: v128): v128 {
  return v128.and(i16x8.shr_u(v, 4), low15);
}

/** v128.load(U8_15), read once per call and passed down (a constant read in the loops is a load per step). */
// @ts-ignore: decorator
@inline function lowMask(): v128 {
  return v128.load(U8_15);
}

/**
 * isum + per row (lane r): s_2c × Σ_2c + s_2c+1 × Σ_2c+1 over chunk c of the tile super-block at tb, where Σ_j = Σ
 * level × q8 over sub-block j, the q8 values at xq; low15: lowMask(). Two 16-byte steps a pass with four dot chains,
 * the weight and q8 addresses advanced by pointers (an index shifted into each address costs three scalar
 * instructions a step, as much as the step's vector work). A loop: written out in full, with a settling branch every
 * two steps, it measured slower (0.096 against 0.090 ms for 2048 × 2048).
 */
// @ts-ignore: decorator
@inline function chunkRows(tb: usize, xq: usize, c: i32, isum: v128, scales: v128, low15: v128): v128 {
  let wp = tb + 64 + (<usize>c << 7); // (8, 16) u8: step m's vector at wp + 16m (row r's nibble bytes 4m .. 4m + 3 at 4r)
  const wEnd = wp + 128;
  let xp = xq + (<usize>c << 6); // (64) i8: the chunk's q8 values, sub-block 2c then 2c + 1
  let loEven = i32x4.splat(0); // (4) i32: rows' Σ level × q8 over sub-block 2c, even steps
  let loOdd = i32x4.splat(0); // odd steps
  let hiEven = i32x4.splat(0); // sub-block 2c + 1
  let hiOdd = i32x4.splat(0);
  do {
    const v = v128.load(wp); // step m
    const u = v128.load(wp, 16); // step m + 1
    loEven = dotLevelsAddEither(v128.load32_splat(xp), v128.and(v, low15), loEven);
    hiEven = dotLevelsAddEither(v128.load32_splat(xp, 32), highLevels(v, low15), hiEven);
    loOdd = dotLevelsAddEither(v128.load32_splat(xp, 4), v128.and(u, low15), loOdd);
    hiOdd = dotLevelsAddEither(v128.load32_splat(xp, 36), highLevels(u, low15), hiOdd);
    wp += 32;
    xp += 8;
  } while (wp < wEnd);
  const lo = i32x4.add(loEven, loOdd);
  const hi = i32x4.add(hiEven, hiOdd);
  return i32x4.add(isum, i32x4.add(i32x4.mul(lo, chunkScales(scales, c, false)), i32x4.mul(hi, chunkScales(scales, c, true))));
}

/** chunkRowsPair's isum of its second token (a module global: each thread's instance has its own). */
let pairSecond: v128 = i32x4.splat(0);

/**
 * chunkRows for two tokens (q8 values at xq0, xq1) from one decode of the levels: returns the first's isum, pairSecond
 * the second's. One step a pass (four dot chains already), addresses advanced by pointers as in chunkRows.
 */
// @ts-ignore: decorator
@inline function chunkRowsPair(tb: usize, xq0: usize, xq1: usize, c: i32, isum0: v128, isum1: v128, scales: v128, low15: v128): v128 {
  let wp = tb + 64 + (<usize>c << 7); // as in chunkRows
  const wEnd = wp + 128;
  let x0 = xq0 + (<usize>c << 6); // (64) i8: token 0's q8 values of the chunk
  const x1Offset = xq1 - xq0; // token 1's at x0 + x1Offset
  let lo0 = i32x4.splat(0);
  let hi0 = i32x4.splat(0);
  let lo1 = i32x4.splat(0);
  let hi1 = i32x4.splat(0);
  do {
    const v = v128.load(wp);
    const low = v128.and(v, low15);
    const high = highLevels(v, low15);
    const x1 = x0 + x1Offset;
    lo0 = dotLevelsAddEither(v128.load32_splat(x0), low, lo0);
    hi0 = dotLevelsAddEither(v128.load32_splat(x0, 32), high, hi0);
    lo1 = dotLevelsAddEither(v128.load32_splat(x1), low, lo1);
    hi1 = dotLevelsAddEither(v128.load32_splat(x1, 32), high, hi1);
    wp += 16;
    x0 += 4;
  } while (wp < wEnd);
  const s0 = chunkScales(scales, c, false);
  const s1 = chunkScales(scales, c, true);
  pairSecond = i32x4.add(isum1, i32x4.add(i32x4.mul(lo1, s0), i32x4.mul(hi1, s1)));
  return i32x4.add(isum0, i32x4.add(i32x4.mul(lo0, s0), i32x4.mul(hi0, s1)));
}

// A tile super-block's header (see the file comment): three 16-byte groups of the rows' scale bytes.
/** u8 lanes 4j + r: scale j of row r (j = 0..3). */
// @ts-ignore: decorator
@inline function scalesLow(tb: usize): v128 {
  return v128.and(v128.load(tb + 16), v128.load(U8_63));
}
/** u8 lanes 4j + r: scale 4 + j of row r. */
// @ts-ignore: decorator
@inline function scalesHigh(tb: usize): v128 {
  return withTopBits(v128.and(v128.load(tb + 48), v128.load(U8_15)), v128.load(tb + 16));
}
/** u8 lanes 8h + 2r + i: min 2h + i of row r (h = 0, 1: mins 0-3). */
// @ts-ignore: decorator
@inline function minsLow(tb: usize): v128 {
  return v128.and(v128.load(tb + 32), v128.load(U8_63));
}
/** u8 lanes 8h + 2r + i: min 4 + 2h + i of row r. */
// @ts-ignore: decorator
@inline function minsHigh(tb: usize): v128 {
  const nibbles = v128.and(i16x8.shr_u(lookup16(v128.load(tb + 48), v128.load(TO_PAIRS)), 4), v128.load(U8_15));
  return withTopBits(nibbles, v128.load(tb + 32));
}

/** The four i16x8 operands of tileSumms from a tile super-block's mins (minsLow, minsHigh): lanes 2r + i of the k-th hold min 2k + i of row r. */
// @ts-ignore: decorator
@inline function minPairs(mLow: v128, mHigh: v128, k: i32): v128 {
  if (k == 0) return i16x8.extend_low_i8x16_u(mLow);
  if (k == 1) return i16x8.extend_high_i8x16_u(mLow);
  return k == 2 ? i16x8.extend_low_i8x16_u(mHigh) : i16x8.extend_high_i8x16_u(mHigh);
}

/**
 * summs per row (lane r) = Σ_j min_j × bsum_j: the mins as (row, pair) i16 (minPairs 0..3) against the q8_K block's
 * sub-block sums in pairs (bsum_j = group sums 2j + 2j + 1, |bsum_j| ≤ 32 × 128: an i16).
 */
// @ts-ignore: decorator
@inline function tileSumms(m0: v128, m1: v128, m2: v128, m3: v128, xb: usize): v128 {
  const sub = i16x8.narrow_i32x4_s(i32x4.extadd_pairwise_i16x8_s(v128.load(xb + 260)), i32x4.extadd_pairwise_i16x8_s(v128.load(xb + 276))); // (8) i16 bsum_j
  let summs = i32x4.dot_i16x8_s(m0, i32x4.shuffle(sub, sub, 0, 0, 0, 0));
  summs = i32x4.add(summs, i32x4.dot_i16x8_s(m1, i32x4.shuffle(sub, sub, 1, 1, 1, 1)));
  summs = i32x4.add(summs, i32x4.dot_i16x8_s(m2, i32x4.shuffle(sub, sub, 2, 2, 2, 2)));
  return i32x4.add(summs, i32x4.dot_i16x8_s(m3, i32x4.shuffle(sub, sub, 3, 3, 3, 3)));
}

/** tileSumms with the tile super-block's mins decoded from its header at tb. */
// @ts-ignore: decorator
@inline function tileSummsAt(tb: usize, xb: usize): v128 {
  const mLow = minsLow(tb);
  const mHigh = minsHigh(tb);
  return tileSumms(minPairs(mLow, mHigh, 0), minPairs(mLow, mHigh, 1), minPairs(mLow, mHigh, 2), minPairs(mLow, mHigh, 3), xb);
}

/** The rows' super-block terms, matvecK's f32 operations: (d_x × d) × isum − (d_x × dmin) × summs (d, dmin: f32x4 over the rows). */
// @ts-ignore: decorator
@inline function tileTerm(d: v128, dmin: v128, xb: usize, isum: v128, summs: v128): v128 {
  const dx = f32x4.splat(load<f32>(xb));
  const term = f32x4.mul(f32x4.mul(dx, d), f32x4.convert_i32x4_s(isum));
  return f32x4.sub(term, f32x4.mul(f32x4.mul(dx, dmin), f32x4.convert_i32x4_s(summs)));
}

/** The rows' d (k = 0) or dmin (k = 1) from the tile super-block's header at tb, as f32x4. */
// @ts-ignore: decorator
@inline function tileScale(tb: usize, k: i32): v128 {
  return f16BitsToF32x4Subnormals(v128.load16x4_u(tb + (<usize>k << 3))); // super-block scales: often subnormal
}

/**
 * out[r] = dot(W[r], x) for r in [rowStart, rowEnd) (x: a q8_K row) over a repacked matrix; rowStart and rowEnd are
 * multiples of 4 (the threads' split is, and only matrices of whole tiles are repacked). scratch: the tiled products'
 * thread scratch (q8_0_x4.ts), unused here (q4_K's tiles are one column segment).
 */
export function matvec_q4_K_x4(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, scratch: usize): void {
  const nb = cols >> 8;
  const tileBytes = <usize>nb * TILE_BLOCK;
  const low15 = lowMask();
  for (let r = rowStart; r < rowEnd; r += 4) {
    const tile = w + <usize>(r >> 2) * tileBytes;
    let acc = f32x4.splat(0); // (4) f32: rows r .. r + 3
    for (let b = 0; b < nb; b++) {
      const tb = tile + <usize>b * TILE_BLOCK;
      const xb = x + <usize>b * Q8_K_BYTES;
      const sLow = scalesLow(tb);
      const sHigh = scalesHigh(tb);
      let isum = chunkRows(tb, xb + 4, 0, i32x4.splat(0), sLow, low15);
      isum = chunkRows(tb, xb + 4, 1, isum, sLow, low15);
      isum = chunkRows(tb, xb + 4, 2, isum, sHigh, low15);
      isum = chunkRows(tb, xb + 4, 3, isum, sHigh, low15);
      acc = f32x4.add(acc, tileTerm(tileScale(tb, 0), tileScale(tb, 1), xb, isum, tileSummsAt(tb, xb)));
    }
    v128.store(out + (<usize>r << 2), acc);
  }
}

// The batched kernel's per-thread state (module globals: each thread's instance has its own). The header of the tile
// super-block being multiplied (d, dmin, mins and scales), decoded once for every token of the batch:
let headD: v128 = f32x4.splat(0); // (4) f32: the rows' d
let headDmin: v128 = f32x4.splat(0); // (4) f32: the rows' dmin
let headMins0: v128 = i32x4.splat(0); // (8) i16: minPairs 0..3 of the rows' mins
let headMins1: v128 = i32x4.splat(0);
let headMins2: v128 = i32x4.splat(0);
let headMins3: v128 = i32x4.splat(0);
let headScalesLow: v128 = i32x4.splat(0); // (16) u8: scalesLow of the tile super-block
let headScalesHigh: v128 = i32x4.splat(0); // scalesHigh
// isum of tokens 1..3 of the four a quad pass multiplies (token 0's stays in a register):
let quadIsum1: v128 = i32x4.splat(0);
let quadIsum2: v128 = i32x4.splat(0);
let quadIsum3: v128 = i32x4.splat(0);

/**
 * isum of four tokens (q8_K blocks at xb, xb + xs, xb + 2·xs, xb + 3·xs) over the tile super-block at tb, from one
 * decode of the levels and the scales in headScalesLow / headScalesHigh: returns token 0's, quadIsum1..3 the others'.
 * Eight independent dot chains (four tokens × the chunk's two sub-blocks) keep the dot units busy where two or four
 * wait on their latency.
 */
// @ts-ignore: decorator
@inline function quadIsums(tb: usize, xb: usize, xs: usize): v128 {
  const low15 = lowMask();
  let isum0 = i32x4.splat(0);
  quadIsum1 = i32x4.splat(0);
  quadIsum2 = i32x4.splat(0);
  quadIsum3 = i32x4.splat(0);
  for (let c = 0; c < 4; c++) {
    const wq = tb + 64 + (<usize>c << 7);
    const xq = xb + 4 + (<usize>c << 6);
    let lo0 = i32x4.splat(0), hi0 = i32x4.splat(0); // (4) i32: rows' Σ level × q8 over sub-blocks 2c, 2c + 1, token 0
    let lo1 = i32x4.splat(0), hi1 = i32x4.splat(0); // token 1
    let lo2 = i32x4.splat(0), hi2 = i32x4.splat(0); // token 2
    let lo3 = i32x4.splat(0), hi3 = i32x4.splat(0); // token 3
    const x1 = xq + xs; // token 1's q8 values of the chunk (the loop adds m: no per-token address arithmetic)
    const x2 = xq + 2 * xs;
    const x3 = x1 + 2 * xs;
    for (let m: usize = 0; m < 32; m += 4) {
      const v = v128.load(wq + (m << 2)); // (16) u8: row r's nibble bytes m .. m + 3 of the chunk at 4r
      const low = v128.and(v, low15);
      const high = highLevels(v, low15);
      lo0 = dotLevelsAddEither(v128.load32_splat(xq + m), low, lo0);
      hi0 = dotLevelsAddEither(v128.load32_splat(xq + m, 32), high, hi0);
      lo1 = dotLevelsAddEither(v128.load32_splat(x1 + m), low, lo1);
      hi1 = dotLevelsAddEither(v128.load32_splat(x1 + m, 32), high, hi1);
      lo2 = dotLevelsAddEither(v128.load32_splat(x2 + m), low, lo2);
      hi2 = dotLevelsAddEither(v128.load32_splat(x2 + m, 32), high, hi2);
      lo3 = dotLevelsAddEither(v128.load32_splat(x3 + m), low, lo3);
      hi3 = dotLevelsAddEither(v128.load32_splat(x3 + m, 32), high, hi3);
    }
    const scales = c < 2 ? headScalesLow : headScalesHigh;
    const s0 = chunkScales(scales, c, false);
    const s1 = chunkScales(scales, c, true);
    isum0 = i32x4.add(isum0, i32x4.add(i32x4.mul(lo0, s0), i32x4.mul(hi0, s1)));
    quadIsum1 = i32x4.add(quadIsum1, i32x4.add(i32x4.mul(lo1, s0), i32x4.mul(hi1, s1)));
    quadIsum2 = i32x4.add(quadIsum2, i32x4.add(i32x4.mul(lo2, s0), i32x4.mul(hi2, s1)));
    quadIsum3 = i32x4.add(quadIsum3, i32x4.add(i32x4.mul(lo3, s0), i32x4.mul(hi3, s1)));
  }
  return isum0;
}

/** out (4 rows of one token, f32) += the super-block term of that token's q8_K block at xb; the first block's sum starts from 0 as matvec's does. */
// @ts-ignore: decorator
@inline function addHeadTerm(o: usize, first: bool, xb: usize, isum: v128): void {
  const term = tileTerm(headD, headDmin, xb, isum, tileSumms(headMins0, headMins1, headMins2, headMins3, xb));
  v128.store(o, f32x4.add(first ? f32x4.splat(0) : v128.load(o), term));
}

/**
 * out[t][r] = matvec_q4_K_x4 of token t (X: nTokens q8_K rows xStride bytes apart; out rows outStride bytes apart);
 * equal to it per token bit for bit. Tiles outer, then super-blocks: a tile super-block's header is decoded once and
 * its levels once per four tokens, whose f32 sums build up in out. Tokens left over take pairs, then matvec. scratch:
 * as matvec_q4_K_x4's (unused).
 */
export function matmul_q4_K_x4(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32, scratch: usize): void {
  const nb = cols >> 8;
  const tileBytes = <usize>nb * TILE_BLOCK;
  const xs = <usize>xStride;
  const os = <usize>outStride;
  const quadTokens = nTokens & ~3;
  for (let r = rowStart; r < rowEnd; r += 4) {
    const tile = w + <usize>(r >> 2) * tileBytes;
    const o = out + (<usize>r << 2);
    for (let b = 0; b < nb; b++) {
      const tb = tile + <usize>b * TILE_BLOCK;
      headD = tileScale(tb, 0);
      headDmin = tileScale(tb, 1);
      const mLow = minsLow(tb);
      const mHigh = minsHigh(tb);
      headMins0 = minPairs(mLow, mHigh, 0);
      headMins1 = minPairs(mLow, mHigh, 1);
      headMins2 = minPairs(mLow, mHigh, 2);
      headMins3 = minPairs(mLow, mHigh, 3);
      headScalesLow = scalesLow(tb);
      headScalesHigh = scalesHigh(tb);
      for (let t = 0; t < quadTokens; t += 4) {
        const xb = x + <usize>t * xs + <usize>b * Q8_K_BYTES;
        const ot = o + <usize>t * os;
        const isum0 = quadIsums(tb, xb, xs);
        addHeadTerm(ot, b == 0, xb, isum0);
        addHeadTerm(ot + os, b == 0, xb + xs, quadIsum1);
        addHeadTerm(ot + 2 * os, b == 0, xb + 2 * xs, quadIsum2);
        addHeadTerm(ot + 3 * os, b == 0, xb + 3 * xs, quadIsum3);
      }
    }
    let t = quadTokens;
    for (; t + 1 < nTokens; t += 2) matmulPair(tile, nb, x + <usize>t * xs, xs, o + <usize>t * os, os);
    if (t < nTokens) matvec_q4_K_x4(w, x + <usize>t * xs, o + <usize>t * os - (<usize>r << 2), r, r + 4, cols, scratch);
  }
}

/** One tile's rows for two tokens (q8_K rows at x0, x0 + xs; out rows at o0, o0 + os) from one decode of the levels. */
// @ts-ignore: decorator
@inline function matmulPair(tile: usize, nb: i32, x0: usize, xs: usize, o0: usize, os: usize): void {
  const low15 = lowMask();
  let acc0 = f32x4.splat(0); // (4) f32: the tile's rows, token 0
  let acc1 = f32x4.splat(0); // token 1
  for (let b = 0; b < nb; b++) {
    const tb = tile + <usize>b * TILE_BLOCK;
    const xb0 = x0 + <usize>b * Q8_K_BYTES;
    const xb1 = xb0 + xs;
    const sLow = scalesLow(tb);
    const sHigh = scalesHigh(tb);
    let isum0 = chunkRowsPair(tb, xb0 + 4, xb1 + 4, 0, i32x4.splat(0), i32x4.splat(0), sLow, low15);
    let isum1 = pairSecond;
    isum0 = chunkRowsPair(tb, xb0 + 4, xb1 + 4, 1, isum0, isum1, sLow, low15);
    isum1 = pairSecond;
    isum0 = chunkRowsPair(tb, xb0 + 4, xb1 + 4, 2, isum0, isum1, sHigh, low15);
    isum1 = pairSecond;
    isum0 = chunkRowsPair(tb, xb0 + 4, xb1 + 4, 3, isum0, isum1, sHigh, low15);
    isum1 = pairSecond;
    const d = tileScale(tb, 0);
    const dmin = tileScale(tb, 1);
    acc0 = f32x4.add(acc0, tileTerm(d, dmin, xb0, isum0, tileSummsAt(tb, xb0)));
    acc1 = f32x4.add(acc1, tileTerm(d, dmin, xb1, isum1, tileSummsAt(tb, xb1)));
  }
  v128.store(o0, acc0);
  v128.store(o0 + os, acc1);
}

/** Byte offset in a tile super-block of row r's q4_K header byte k (0..15: d, dmin, the 12 scale bytes). */
// @ts-ignore: decorator
@inline function tileOffset(r: i32, k: i32): usize {
  if (k < 4) return <usize>((k >> 1) << 3) + <usize>(r << 1) + <usize>(k & 1); // d (k 0, 1), dmin (k 2, 3)
  if (k < 8) return 16 + <usize>((k - 4) << 2) + <usize>r; // scale bytes 0-3: lane 4j + r
  if (k < 12) return 32 + <usize>(((k - 8) >> 1) << 3) + <usize>(r << 1) + <usize>(k & 1); // 4-7: lane 8h + 2r + i
  return 48 + <usize>((k - 12) << 2) + <usize>r; // 8-11: lane 4j + r
}

/**
 * Repack `rows` (a multiple of 4) q4_K rows of `cols` values at w in place into tiles (one column segment: tile after
 * tile); scratch: 32 rows' bytes (tiles.ts GROUP_ROWS × cols / 256 × 144). unpack_q4_K_x4 undoes it.
 */
export function repack_q4_K_x4(w: usize, rows: i32, cols: i32, scratch: usize): void {
  moveTiles<Q4KTile>(w, rows, cols, scratch, true, 8, ROW_BLOCK, cols >> 8);
}

export function unpack_q4_K_x4(w: usize, rows: i32, cols: i32, scratch: usize): void {
  moveTiles<Q4KTile>(w, rows, cols, scratch, false, 8, ROW_BLOCK, cols >> 8);
}

/** Row r's q4_K super-block at rb into (pack) or out of the tile super-block at tb (tiles.ts moveTiles). */
// @ts-ignore: decorator
@final class Q4KTile {
  // @ts-ignore: decorator
  @inline moveBlock(tb: usize, rb: usize, r: i32, pack: bool): void {
    for (let k = 0; k < 16; k++) { // header bytes one by one
      if (pack) store<u8>(tb + tileOffset(r, k), load<u8>(rb + <usize>k));
      else store<u8>(rb + <usize>k, load<u8>(tb + tileOffset(r, k)));
    }
    for (let c = 0; c < 4; c++) { // nibble bytes four at a time: row bytes 32c + 4m .. at 128c + 16m + 4r
      const rq = rb + 16 + (<usize>c << 5);
      const tq = tb + 64 + (<usize>c << 7) + (<usize>r << 2);
      for (let m = 0; m < 8; m++) {
        if (pack) store<u32>(tq + (<usize>m << 4), load<u32>(rq + (<usize>m << 2)));
        else store<u32>(rq + (<usize>m << 2), load<u32>(tq + (<usize>m << 4)));
      }
    }
  }
}
