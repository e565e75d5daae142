// Batched products of symmetric 32-value block formats (q8_0, q4_0, q5_0, iq4_nl weights; q8_0 partner) over the
// "wide" layout: both operands decoded once to int16 and interleaved so that one i32x4.dot_i16x8_s yields partial
// sums of four different blocks in its four lanes, and a group's integer block sums need no horizontal shuffles.
//
// Wide row layout: (nGroups, GROUP_BYTES), nGroups = ceil(blocks / 4); group g covers blocks 4g .. 4g+3:
//   bytes [16i, 16i + 16), i = 0..15: i16 lanes 2l, 2l+1 = values 2i, 2i+1 of block 4g + l (l = 0..3)
//   bytes [256, 272): f32x4, lane l = the scale d of block 4g + l (its fp16 read as f32)
// Blocks past the row's end are zeros with scale 0.
//
// The floating-point order is rowdot.ts's (lane l of an f32x4 accumulator adds block 4g + l's term
// f32(Σ w·x) × (d_w × d_x); the row's value is (l0 + l1) + (l2 + l3)); padding lanes add +0, as its masked tail does.
// So matmulWide_<fmt> equals matvec_<fmt> token by token, bit for bit.
//
// The relaxed build (kernels-relaxed.wasm) uses int8 layouts of the same size and scale offset instead, four values
// of one block per i32 lane, so one relaxed dot adds 16 products into the partial sums of four blocks:
//   weight rows (widened per batch into scratch): bytes [16c, 16c + 16), c = 0..7: lane l = |w| of values 4c .. 4c+3
//     of block 4g + l; bytes [128 + 16c, 144 + 16c): their sign masks (0xff where w < 0); [256, 272): f32x4 d_w.
//   partner rows (widenRows_q8_0, quantizeRowsWide_q8_0): bytes [16c, 16c + 16): x in the same order; [128 + 16c,
//     144 + 16c): −x; [256, 272): f32x4 d_x.
// Σ w·x = Σ |w| · (−x where w < 0, else x): |w| ≤ 127 is the relaxed dot's i7 operand, and the select is
// i8x16.relaxed_laneselect with all-ones-or-zeros masks, which every engine computes exactly. So the integer block
// sums and the f32 order are the plain build's (partner values within ±127; see rowdot.ts on −128). A q8_0 weight row
// holding −128 (quantizeRow_q8_0 never writes it; a file might) has no i7 |w|: it is widened as its signed values and
// dotted in i16 (tile1x1Signed), the same integers, slower.
import { AS_PARTNER, AS_VALUES, AS_WEIGHTS, dotLevelsAdd, hsumF32x4, loadF16x4, storeTransposedI32x4 } from "./common";
import { IQ4_NL, Q4_0, Q5_0, Q8_0, blockBytes, blockValuesI8, weightPart } from "./rowdot";
import { quantizeRow_q8_0 } from "./q8_0";
import { tileRows_q8_0 } from "./q8_0_x4";

/** Bytes of one wide group (four blocks). */
export const GROUP_BYTES: usize = 272;
const SCALES: usize = 256;

/** Bytes of one row of `cols` values in the wide layout. */
// @ts-ignore: decorator
@inline export function wideRowBytes(cols: i32): usize {
  return <usize>(((cols >> 5) + 3) >> 2) * GROUP_BYTES;
}

/**
 * Part k of the weight block at wb as the build's layout takes it: values 8k .. 8k+7 as i16x8 (plain, k = 0..3), or
 * values 16k .. 16k+15 as i8x16 (relaxed, k = 0..1).
 */
// @ts-ignore: decorator
@inline function blockPart(fmt: i32, wb: usize, k: i32): v128 {
  return ASC_FEATURE_RELAXED_SIMD ? blockValuesI8(fmt, wb, k) : weightPart(fmt, wb, k);
}

/**
 * One wide group at dst from the blocks at p (n = 1..4 of them valid; the others become zeros with scale 0): the
 * values in lane order, stored as `kind` says (common.ts storeAs), and the scales. Returns the OR of storeAs's results.
 */
// @ts-ignore: decorator
@inline function widenGroup(fmt: i32, kind: i32, p: usize, n: i32, dst: usize): v128 {
  const B = blockBytes(fmt);
  const zero = i32x4.splat(0);
  const parts = ASC_FEATURE_RELAXED_SIMD ? 2 : 4;
  let seen = zero;
  for (let k = 0; k < parts; k++) {
    const a = blockPart(fmt, p, k);
    const b = n > 1 ? blockPart(fmt, p + B, k) : zero;
    const c = n > 2 ? blockPart(fmt, p + 2 * B, k) : zero;
    const d = n > 3 ? blockPart(fmt, p + 3 * B, k) : zero;
    seen = v128.or(seen, storeTransposedI32x4(kind, dst + <usize>(k << 6), a, b, c, d)); // vector 4k + i: the i-th i32 lane's worth of each block's part k
  }
  const p1 = n > 1 ? p + B : p;
  const p2 = n > 2 ? p + 2 * B : p1;
  const p3 = n > 3 ? p + 3 * B : p2;
  const lanes = n == 4 ? i32x4.splat(-1) : n == 3 ? i32x4(-1, -1, -1, 0) : n == 2 ? i32x4(-1, -1, 0, 0) : i32x4(-1, 0, 0, 0);
  v128.store(dst + SCALES, v128.and(loadF16x4(p, p1, p2, p3), lanes));
  return seen;
}

/**
 * The row of nb blocks at src in the build's wide layout at dst (weights unless `partner`). Returns whether a weight
 * row holds −128 (relaxed build only: |−128| has no i7 form, so the row is then widened as its signed values, for
 * tile1x1Signed).
 */
// @ts-ignore: decorator
@inline function widenRow(fmt: i32, src: usize, nb: i32, dst: usize, partner: bool): bool {
  const kind = !ASC_FEATURE_RELAXED_SIMD ? AS_VALUES : partner ? AS_PARTNER : AS_WEIGHTS;
  if (!widenGroups(fmt, kind, src, nb, dst) || kind != AS_WEIGHTS) return false;
  // a −128: the whole row as signed values (tile1x1Signed reads those and the scales only)
  widenGroups(fmt, AS_VALUES, src, nb, dst);
  return true;
}

/** widenGroup over a row's nb blocks (whole groups with n = 4 known, then a last partial one); whether |w| met −128. */
// @ts-ignore: decorator
@inline function widenGroups(fmt: i32, kind: i32, src: usize, nb: i32, dst: usize): bool {
  const B = blockBytes(fmt);
  const whole = nb & ~3;
  let seen = i32x4.splat(0);
  for (let g = 0; g < whole; g += 4) seen = v128.or(seen, widenGroup(fmt, kind, src + <usize>g * B, 4, dst + <usize>(g >> 2) * GROUP_BYTES));
  if (whole < nb) seen = v128.or(seen, widenGroup(fmt, kind, src + <usize>whole * B, nb - whole, dst + <usize>(whole >> 2) * GROUP_BYTES));
  return i8x16.bitmask(seen) != 0;
}

/** Rows [0, nRows) of q8_0 (nRows, cols) at src (rows packed) in the wide layout at dst ((nRows, wideRowBytes(cols))). */
export function widenRows_q8_0(src: usize, dst: usize, nRows: i32, cols: i32): void {
  const nb = cols >> 5;
  const srcBytes = <usize>nb * blockBytes(Q8_0);
  const dstBytes = wideRowBytes(cols);
  for (let r = 0; r < nRows; r++) widenRow(Q8_0, src + <usize>r * srcBytes, nb, dst + <usize>r * dstBytes, true);
}

/**
 * Rows [rowStart, rowEnd) of f32 (nRows, cols) at src quantized to q8_0 (quantizeRow_q8_0) at q8 ((nRows, q8_0 row
 * bytes)) and widened (widenRows_q8_0) at dst ((nRows, wideRowBytes(cols))): one row range per thread.
 */
export function quantizeRowsWide_q8_0(src: usize, q8: usize, dst: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  const nb = cols >> 5;
  const q8Bytes = <usize>nb * blockBytes(Q8_0);
  const wide = wideRowBytes(cols);
  for (let r = rowStart; r < rowEnd; r++) {
    const row = q8 + <usize>r * q8Bytes;
    quantizeRow_q8_0(src + (<usize>r * <usize>cols << 2), row, cols);
    widenRow(Q8_0, row, nb, dst + <usize>r * wide, true);
  }
}

/** f32 terms of a group: f32(sums) × (d_w × d_x), the scales read at wide groups wg and xg. */
// @ts-ignore: decorator
@inline function groupTerms(sums: v128, wg: usize, xg: usize): v128 {
  return f32x4.mul(f32x4.convert_i32x4_s(sums), f32x4.mul(v128.load(wg + SCALES), v128.load(xg + SCALES)));
}

/** Bytes of a group's values in the build's layout (int16: 256; int8: 128, its negations or signs after them). */
const VALUE_BYTES: usize = ASC_FEATURE_RELAXED_SIMD ? 128 : 256;

/** The second half of a 16-byte chunk of the relaxed layouts (signs, or −x), 128 bytes on; nothing in the plain build. */
// @ts-ignore: decorator
@inline function chunkPair(chunk: usize): v128 {
  return ASC_FEATURE_RELAXED_SIMD ? v128.load(chunk, 128) : i32x4.splat(0);
}

/**
 * acc + the products of one 16-byte chunk: weights w (with, relaxed build, signs wm: |w| · (x or nx = −x)) and
 * partner x, four blocks' partial sums in four lanes.
 */
// @ts-ignore: decorator
@inline function chunkDotAdd(w: v128, wm: v128, x: v128, nx: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return dotLevelsAdd(i8x16.relaxed_laneselect(nx, x, wm), w, acc);
  return i32x4.add(acc, i32x4.dot_i16x8_s(w, x));
}

/** Dots of wide weight rows wa, wb with wide partner rows xa, xb (nGroups groups); results stored at oaa (wa·xa) etc. */
// @ts-ignore: decorator
@inline function tile2x2(wa: usize, wb: usize, xa: usize, xb: usize, nGroups: i32, oaa: usize, oab: usize, oba: usize, obb: usize): void {
  let accAA = f32x4.splat(0);
  let accAB = f32x4.splat(0);
  let accBA = f32x4.splat(0);
  let accBB = f32x4.splat(0);
  let pa = wa;
  let pb = wb;
  let qa = xa;
  let qb = xb;
  for (let g = 0; g < nGroups; g++) {
    let sAA = i32x4.splat(0);
    let sAB = i32x4.splat(0);
    let sBA = i32x4.splat(0);
    let sBB = i32x4.splat(0);
    for (let c: usize = 0; c < VALUE_BYTES; c += 16) {
      const a = v128.load(pa + c);
      const am = chunkPair(pa + c);
      const b = v128.load(pb + c);
      const bm = chunkPair(pb + c);
      const x = v128.load(qa + c);
      const nx = chunkPair(qa + c);
      sAA = chunkDotAdd(a, am, x, nx, sAA);
      sBA = chunkDotAdd(b, bm, x, nx, sBA);
      const y = v128.load(qb + c);
      const ny = chunkPair(qb + c);
      sAB = chunkDotAdd(a, am, y, ny, sAB);
      sBB = chunkDotAdd(b, bm, y, ny, sBB);
    }
    accAA = f32x4.add(accAA, groupTerms(sAA, pa, qa));
    accAB = f32x4.add(accAB, groupTerms(sAB, pa, qb));
    accBA = f32x4.add(accBA, groupTerms(sBA, pb, qa));
    accBB = f32x4.add(accBB, groupTerms(sBB, pb, qb));
    pa += GROUP_BYTES;
    pb += GROUP_BYTES;
    qa += GROUP_BYTES;
    qb += GROUP_BYTES;
  }
  store<f32>(oaa, hsumF32x4(accAA));
  store<f32>(oab, hsumF32x4(accAB));
  store<f32>(oba, hsumF32x4(accBA));
  store<f32>(obb, hsumF32x4(accBB));
}

/**
 * Dots of wide weight rows wa, wb with the four wide partner rows at xa, xa + xs, xa + 2·xs, xa + 3·xs; the result of
 * row wa (wb) with partner row j is stored at oa (ob) + j·os. One 16-byte step per iteration: unrolling more makes V8
 * hoist the loads and spill. Plain build only: the relaxed one's six operands and eight accumulators spill.
 */
// @ts-ignore: decorator
@inline function tile2x4(wa: usize, wb: usize, xa: usize, xs: usize, nGroups: i32, oa: usize, ob: usize, os: usize): void {
  let aA = f32x4.splat(0);
  let aB = f32x4.splat(0);
  let aC = f32x4.splat(0);
  let aD = f32x4.splat(0);
  let bA = f32x4.splat(0);
  let bB = f32x4.splat(0);
  let bC = f32x4.splat(0);
  let bD = f32x4.splat(0);
  let pa = wa;
  let pb = wb;
  let q = xa;
  for (let g = 0; g < nGroups; g++) {
    let sAA = i32x4.splat(0);
    let sAB = i32x4.splat(0);
    let sAC = i32x4.splat(0);
    let sAD = i32x4.splat(0);
    let sBA = i32x4.splat(0);
    let sBB = i32x4.splat(0);
    let sBC = i32x4.splat(0);
    let sBD = i32x4.splat(0);
    for (let i: usize = 0; i < SCALES; i += 16) {
      const a0 = v128.load(pa + i);
      const b0 = v128.load(pb + i);
      const x0 = v128.load(q + i);
      sAA = i32x4.add(sAA, i32x4.dot_i16x8_s(a0, x0));
      sBA = i32x4.add(sBA, i32x4.dot_i16x8_s(b0, x0));
      const x1 = v128.load(q + xs + i);
      sAB = i32x4.add(sAB, i32x4.dot_i16x8_s(a0, x1));
      sBB = i32x4.add(sBB, i32x4.dot_i16x8_s(b0, x1));
      const x2 = v128.load(q + 2 * xs + i);
      sAC = i32x4.add(sAC, i32x4.dot_i16x8_s(a0, x2));
      sBC = i32x4.add(sBC, i32x4.dot_i16x8_s(b0, x2));
      const x3 = v128.load(q + 3 * xs + i);
      sAD = i32x4.add(sAD, i32x4.dot_i16x8_s(a0, x3));
      sBD = i32x4.add(sBD, i32x4.dot_i16x8_s(b0, x3));
    }
    aA = f32x4.add(aA, groupTerms(sAA, pa, q));
    aB = f32x4.add(aB, groupTerms(sAB, pa, q + xs));
    aC = f32x4.add(aC, groupTerms(sAC, pa, q + 2 * xs));
    aD = f32x4.add(aD, groupTerms(sAD, pa, q + 3 * xs));
    bA = f32x4.add(bA, groupTerms(sBA, pb, q));
    bB = f32x4.add(bB, groupTerms(sBB, pb, q + xs));
    bC = f32x4.add(bC, groupTerms(sBC, pb, q + 2 * xs));
    bD = f32x4.add(bD, groupTerms(sBD, pb, q + 3 * xs));
    pa += GROUP_BYTES;
    pb += GROUP_BYTES;
    q += GROUP_BYTES;
  }
  store<f32>(oa, hsumF32x4(aA));
  store<f32>(oa + os, hsumF32x4(aB));
  store<f32>(oa + 2 * os, hsumF32x4(aC));
  store<f32>(oa + 3 * os, hsumF32x4(aD));
  store<f32>(ob, hsumF32x4(bA));
  store<f32>(ob + os, hsumF32x4(bB));
  store<f32>(ob + 2 * os, hsumF32x4(bC));
  store<f32>(ob + 3 * os, hsumF32x4(bD));
}

/** Dot of one wide weight row with one wide partner row. */
// @ts-ignore: decorator
@inline function tile1x1(wa: usize, xa: usize, nGroups: i32): f32 {
  let acc = f32x4.splat(0);
  let p = wa;
  let q = xa;
  for (let g = 0; g < nGroups; g++) {
    let s = i32x4.splat(0);
    for (let c: usize = 0; c < VALUE_BYTES; c += 16) s = chunkDotAdd(v128.load(p + c), chunkPair(p + c), v128.load(q + c), chunkPair(q + c), s);
    acc = f32x4.add(acc, groupTerms(s, p, q));
    p += GROUP_BYTES;
    q += GROUP_BYTES;
  }
  return hsumF32x4(acc);
}

/**
 * Relaxed build: dot of a weight row widened as its signed int8 values (one holding −128) with one int8 partner row,
 * in i16: per chunk, lanes [l0, l0, l1, l1] of the low half's pair sums and [l2, l2, l3, l3] of the high half's,
 * added pairwise per group.
 */
// @ts-ignore: decorator
@inline function tile1x1Signed(wa: usize, xa: usize, nGroups: i32): f32 {
  let acc = f32x4.splat(0);
  let p = wa;
  let q = xa;
  for (let g = 0; g < nGroups; g++) {
    let lo = i32x4.splat(0);
    let hi = i32x4.splat(0);
    for (let c: usize = 0; c < 128; c += 16) {
      const w = v128.load(p + c);
      const x = v128.load(q + c);
      lo = i32x4.add(lo, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w), i16x8.extend_low_i8x16_s(x)));
      hi = i32x4.add(hi, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w), i16x8.extend_high_i8x16_s(x)));
    }
    const sums = i32x4.add(i32x4.shuffle(lo, hi, 0, 2, 4, 6), i32x4.shuffle(lo, hi, 1, 3, 5, 7));
    acc = f32x4.add(acc, groupTerms(sums, p, q));
    p += GROUP_BYTES;
    q += GROUP_BYTES;
  }
  return hsumF32x4(acc);
}

/** Row r's dots with tokens [t0, nTokens): tile1x1, or tile1x1Signed where the row was widened as signed values. */
// @ts-ignore: decorator
@inline function rowTokens(wr: usize, signed: bool, xw: usize, wide: usize, nGroups: i32, t0: i32, nTokens: i32, o: usize, os: usize): void {
  for (let t = t0; t < nTokens; t++) {
    const x = xw + <usize>t * wide;
    store<f32>(o + <usize>t * os, signed ? tile1x1Signed(wr, x, nGroups) : tile1x1(wr, x, nGroups));
  }
}

/**
 * out[t][r] = dot(W[r], X[t]) for r in [rowStart, rowEnd), t in [0, nTokens): W (rows, cols) in fmt, packed; X
 * (nTokens, wideRowBytes(cols)) in the build's wide layout (widenRows_q8_0 of the q8_0 partner); out (nTokens,
 * outStride bytes) f32; scratch: 2 × wideRowBytes(cols) bytes of this thread's own. Rows two at a time are widened
 * into scratch, then the tokens pass over them four (plain build), then two, then one at a time.
 */
// @ts-ignore: decorator
@inline function matmulWide(fmt: i32, w: usize, xw: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, outStride: i32, scratch: usize): void {
  const nb = cols >> 5;
  const nGroups = (nb + 3) >> 2;
  const wide = wideRowBytes(cols);
  const rowBytes = <usize>nb * blockBytes(fmt);
  const os = <usize>outStride;
  const wa = scratch;
  const wb = scratch + wide;
  let r = rowStart;
  for (; r + 1 < rowEnd; r += 2) {
    const signedA = widenRow(fmt, w + <usize>r * rowBytes, nb, wa, false);
    const signedB = widenRow(fmt, w + <usize>(r + 1) * rowBytes, nb, wb, false);
    const o = out + (<usize>r << 2);
    let t = 0;
    if (!signedA && !signedB) {
      if (!ASC_FEATURE_RELAXED_SIMD) {
        for (; t + 3 < nTokens; t += 4) {
          const ot = o + <usize>t * os;
          tile2x4(wa, wb, xw + <usize>t * wide, wide, nGroups, ot, ot + 4, os);
        }
      }
      for (; t + 1 < nTokens; t += 2) {
        const ot = o + <usize>t * os;
        tile2x2(wa, wb, xw + <usize>t * wide, xw + <usize>(t + 1) * wide, nGroups, ot, ot + os, ot + 4, ot + os + 4);
      }
    }
    rowTokens(wa, signedA, xw, wide, nGroups, t, nTokens, o, os);
    rowTokens(wb, signedB, xw, wide, nGroups, t, nTokens, o + 4, os);
  }
  if (r < rowEnd) rowTokens(wa, widenRow(fmt, w + <usize>r * rowBytes, nb, wa, false), xw, wide, nGroups, 0, nTokens, out + (<usize>r << 2), os);
}

export function matmulWide_q8_0(w: usize, xw: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, outStride: i32, scratch: usize): void {
  matmulWide(Q8_0, w, xw, out, rowStart, rowEnd, cols, nTokens, outStride, scratch);
}

/**
 * matmulWide_q8_0 over a matrix repacked by repack_q8_0_x4 (rowStart, rowEnd as matmul_q8_0_x4's), for batches large enough
 * that widening rows pays (src/model/linear.ts): each tile's four rows are laid back out as q8_0 rows in scratch
 * (tileRows_q8_0), after the two widened rows, and taken as matmulWide_q8_0 takes rows, so the bits are its bits.
 * scratch: 2 × wideRowBytes(cols) + 4 × (cols / 32) × 34 bytes of this thread's own.
 */
export function matmulWide_q8_0_x4(w: usize, xw: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, outStride: i32, scratch: usize): void {
  const nb = cols >> 5;
  const rows = scratch + 2 * wideRowBytes(cols); // (4, nb × 34): the tile's rows
  for (let r = rowStart; r < rowEnd; r += 4) {
    tileRows_q8_0(w, rowStart, rowEnd, r, nb, rows);
    matmulWide(Q8_0, rows, xw, out + (<usize>r << 2), 0, 4, cols, nTokens, outStride, scratch);
  }
}

export function matmulWide_q4_0(w: usize, xw: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, outStride: i32, scratch: usize): void {
  matmulWide(Q4_0, w, xw, out, rowStart, rowEnd, cols, nTokens, outStride, scratch);
}

export function matmulWide_q5_0(w: usize, xw: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, outStride: i32, scratch: usize): void {
  matmulWide(Q5_0, w, xw, out, rowStart, rowEnd, cols, nTokens, outStride, scratch);
}

export function matmulWide_iq4_nl(w: usize, xw: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, outStride: i32, scratch: usize): void {
  matmulWide(IQ4_NL, w, xw, out, rowStart, rowEnd, cols, nTokens, outStride, scratch);
}
