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
import { hsumF32x4, loadF16x4, storeTransposedI32x4 } from "./common";
import { IQ4_NL, Q4_0, Q5_0, Q8_0, blockBytes, weightPart } from "./rowdot";
import { quantizeRow_q8_0 } from "./q8_0";

/** Bytes of one wide group (four blocks). */
export const GROUP_BYTES: usize = 272;
const SCALES: usize = 256;

/** Bytes of one row of `cols` values in the wide layout. */
// @ts-ignore: decorator
@inline export function wideRowBytes(cols: i32): usize {
  return <usize>(((cols >> 5) + 3) >> 2) * GROUP_BYTES;
}

/** One wide group at dst from the blocks at p (n = 1..4 of them valid; the others become zeros with scale 0). */
// @ts-ignore: decorator
@inline function widenGroup(fmt: i32, p: usize, n: i32, dst: usize): void {
  const B = blockBytes(fmt);
  const zero = i32x4.splat(0);
  for (let k = 0; k < 4; k++) {
    const a = weightPart(fmt, p, k);
    const b = n > 1 ? weightPart(fmt, p + B, k) : zero;
    const c = n > 2 ? weightPart(fmt, p + 2 * B, k) : zero;
    const d = n > 3 ? weightPart(fmt, p + 3 * B, k) : zero;
    storeTransposedI32x4(dst + <usize>(k << 6), a, b, c, d); // value pair i32 lanes: vector 4k + i = pair i of the four blocks
  }
  const p1 = n > 1 ? p + B : p;
  const p2 = n > 2 ? p + 2 * B : p1;
  const p3 = n > 3 ? p + 3 * B : p2;
  const lanes = n == 4 ? i32x4.splat(-1) : n == 3 ? i32x4(-1, -1, -1, 0) : n == 2 ? i32x4(-1, -1, 0, 0) : i32x4(-1, 0, 0, 0);
  v128.store(dst + SCALES, v128.and(loadF16x4(p, p1, p2, p3), lanes));
}

/** The row of nb blocks at src in the wide layout at dst. */
// @ts-ignore: decorator
@inline function widenRow(fmt: i32, src: usize, nb: i32, dst: usize): void {
  const B = blockBytes(fmt);
  let g = 0;
  for (; g + 4 <= nb; g += 4) widenGroup(fmt, src + <usize>g * B, 4, dst + <usize>(g >> 2) * GROUP_BYTES);
  if (g < nb) widenGroup(fmt, src + <usize>g * B, nb - g, dst + <usize>(g >> 2) * GROUP_BYTES);
}

/** Rows [0, nRows) of q8_0 (nRows, cols) at src (rows packed) in the wide layout at dst ((nRows, wideRowBytes(cols))). */
export function widenRows_q8_0(src: usize, dst: usize, nRows: i32, cols: i32): void {
  const nb = cols >> 5;
  const srcBytes = <usize>nb * blockBytes(Q8_0);
  const dstBytes = wideRowBytes(cols);
  for (let r = 0; r < nRows; r++) widenRow(Q8_0, src + <usize>r * srcBytes, nb, dst + <usize>r * dstBytes);
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
    widenRow(Q8_0, row, nb, dst + <usize>r * wide);
  }
}

/** f32 terms of a group: f32(sums) × (d_w × d_x), the scales read at wide groups wg and xg. */
// @ts-ignore: decorator
@inline function groupTerms(sums: v128, wg: usize, xg: usize): v128 {
  return f32x4.mul(f32x4.convert_i32x4_s(sums), f32x4.mul(v128.load(wg + SCALES), v128.load(xg + SCALES)));
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
    for (let i: usize = 0; i < SCALES; i += 32) {
      const a0 = v128.load(pa + i);
      const b0 = v128.load(pb + i);
      const x0 = v128.load(qa + i);
      const y0 = v128.load(qb + i);
      sAA = i32x4.add(sAA, i32x4.dot_i16x8_s(a0, x0));
      sAB = i32x4.add(sAB, i32x4.dot_i16x8_s(a0, y0));
      sBA = i32x4.add(sBA, i32x4.dot_i16x8_s(b0, x0));
      sBB = i32x4.add(sBB, i32x4.dot_i16x8_s(b0, y0));
      const a1 = v128.load(pa + i, 16);
      const b1 = v128.load(pb + i, 16);
      const x1 = v128.load(qa + i, 16);
      const y1 = v128.load(qb + i, 16);
      sAA = i32x4.add(sAA, i32x4.dot_i16x8_s(a1, x1));
      sAB = i32x4.add(sAB, i32x4.dot_i16x8_s(a1, y1));
      sBA = i32x4.add(sBA, i32x4.dot_i16x8_s(b1, x1));
      sBB = i32x4.add(sBB, i32x4.dot_i16x8_s(b1, y1));
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
 * hoist the loads and spill.
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
    for (let i: usize = 0; i < SCALES; i += 16) s = i32x4.add(s, i32x4.dot_i16x8_s(v128.load(p + i), v128.load(q + i)));
    acc = f32x4.add(acc, groupTerms(s, p, q));
    p += GROUP_BYTES;
    q += GROUP_BYTES;
  }
  return hsumF32x4(acc);
}

/**
 * out[t][r] = dot(W[r], X[t]) for r in [rowStart, rowEnd), t in [0, nTokens): W (rows, cols) in fmt, packed; X
 * (nTokens, wideRowBytes(cols)) in the wide layout (widenRows_q8_0 of the q8_0 partner); out (nTokens, outStride
 * bytes) f32; scratch: 2 × wideRowBytes(cols) bytes of this thread's own. Rows two at a time are widened into scratch,
 * then the tokens pass over them four (then two, then one) at a time.
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
    widenRow(fmt, w + <usize>r * rowBytes, nb, wa);
    widenRow(fmt, w + <usize>(r + 1) * rowBytes, nb, wb);
    const o = out + (<usize>r << 2);
    let t = 0;
    for (; t + 3 < nTokens; t += 4) {
      const ot = o + <usize>t * os;
      tile2x4(wa, wb, xw + <usize>t * wide, wide, nGroups, ot, ot + 4, os);
    }
    for (; t + 1 < nTokens; t += 2) {
      const ot = o + <usize>t * os;
      tile2x2(wa, wb, xw + <usize>t * wide, xw + <usize>(t + 1) * wide, nGroups, ot, ot + os, ot + 4, ot + os + 4);
    }
    if (t < nTokens) {
      const ot = o + <usize>t * os;
      store<f32>(ot, tile1x1(wa, xw + <usize>t * wide, nGroups));
      store<f32>(ot + 4, tile1x1(wb, xw + <usize>t * wide, nGroups));
    }
  }
  if (r < rowEnd) {
    widenRow(fmt, w + <usize>r * rowBytes, nb, wa);
    const o = out + (<usize>r << 2);
    for (let t = 0; t < nTokens; t++) store<f32>(o + <usize>t * os, tile1x1(wa, xw + <usize>t * wide, nGroups));
  }
}

export function matmulWide_q8_0(w: usize, xw: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, outStride: i32, scratch: usize): void {
  matmulWide(Q8_0, w, xw, out, rowStart, rowEnd, cols, nTokens, outStride, scratch);
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
