// Shared K-quant kernel code (q2_K .. q6_K weights, q8_K activations; 256-value super-blocks). Not re-exported by
// index.ts. Layouts and rounding: src/formats/reference/kquants.ts and reference/q*_K.ts.
//
// Dots: every K-quant super-block is read as 16 groups of 16 signed integer levels (offsets applied) with one integer
// scale (and, for q2_K / q4_K / q5_K, one integer min) per group. Per super-block the integers
//   isum = Σ_g scale_g × Σ_{16 values} q8 × level      summs = Σ_g min_g × bsums_g
// are exact (i8 × i8 products summed in i16 pairs, then i32; in the relaxed build, the stored unsigned levels times
// q8 in relaxed dots, the offset of q3_K / q6_K levels subtracted as offset × Σ_g scale_g × bsums_g), and the
// super-block's term is the f32
//   (d_x × d) × f32(isum) − (d_x × dmin) × f32(summs)
// as in the scalar reference; a row's terms are summed in f32 in block order. matmul runs the same row dot per
// (row, token), so it equals matvec bit for bit.
//
// Quantizers: scalar ports of ggml's quantize_row_q*_K_ref (float arithmetic in the same order, no fused
// multiply-add). The weight quantizers use a static scratch area: they are for one thread at a time (weights are
// quantized ahead of time, never in the parallel forward pass). quantizeRow_q8_K needs no scratch.
import { dotLevelsAdd, f32ToF16, loadF16, loadF16x4Subnormals, lookup16, pairDotLevels } from "./common";

export const Q2_K: i32 = 10;
export const Q3_K: i32 = 11;
export const Q4_K: i32 = 12;
export const Q5_K: i32 = 13;
export const Q6_K: i32 = 14;

export const QK_K: i32 = 256;
export const Q8_K_BYTES: usize = 292;
const GROUP_MAX_EPS: f32 = 1e-15;

// ---- scratch for the weight quantizers (one thread at a time) -------------------------------------------------
export const SCRATCH_L: usize = memory.data(256, 16); // (256) u8 levels of one super-block
const SCRATCH_LAUX: usize = memory.data(32, 16); // (32) u8 trial levels
export const SCRATCH_WEIGHTS: usize = memory.data(128, 16); // (32) f32 fit weights
export const SCRATCH_SCALES: usize = memory.data(64, 16); // (16) f32 fitted scales
export const SCRATCH_MINS: usize = memory.data(64, 16); // (16) f32 fitted −mins
const SCRATCH_LEVELS: usize = memory.data(16, 16); // (16) i8 signed levels (make_q3_quants)

// @ts-ignore: decorator
@inline export function blockBytesK(fmt: i32): usize {
  return fmt == Q2_K ? 84 : fmt == Q3_K ? 110 : fmt == Q4_K ? 144 : fmt == Q5_K ? 176 : 210;
}

// @ts-ignore: decorator
@inline export function hasMinK(fmt: i32): bool {
  return fmt == Q2_K || fmt == Q4_K || fmt == Q5_K;
}

/** ggml's nearest_int: add 1.5 × 2^23 in f32 and read the low mantissa bits. */
// @ts-ignore: decorator
@inline export function nearestInt(x: f32): i32 {
  return (reinterpret<i32>(x + <f32>12582912.0) & 0x7fffff) - 0x400000;
}

// @ts-ignore: decorator
@inline export function clampI(v: i32, lo: i32, hi: i32): i32 {
  return v < lo ? lo : v > hi ? hi : v;
}

// ---- scale searches (scalar, reference order) ----------------------------------------------------------------

/**
 * make_qkx2_quants over the n floats at x with the n f32 weights at w: levels 0..nmax into L (u8), returns the scale
 * and stores −min at theMin.
 */
export function makeQkx2Quants(n: i32, nmax: i32, x: usize, w: usize, L: usize, theMin: usize, rmin: f32, rdelta: f32, nstep: i32, useMad: bool): f32 {
  let min = load<f32>(x);
  let max = min;
  let sumW = load<f32>(w);
  let sumX: f32 = sumW * load<f32>(x);
  for (let i = 1; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    if (v < min) min = v;
    if (v > max) max = v;
    const wi = load<f32>(w + (<usize>i << 2));
    sumW += wi;
    sumX += wi * v;
  }
  if (min > 0) min = 0;
  if (max == min) {
    memory.fill(L, 0, <usize>n);
    store<f32>(theMin, -min);
    return 0;
  }
  const fmax = <f32>nmax;
  let iscale: f32 = fmax / (max - min);
  let scale: f32 = <f32>1.0 / iscale;
  let bestError: f32 = 0;
  for (let i = 0; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    const l = clampI(nearestInt(iscale * (v - min)), 0, nmax);
    store<u8>(L + <usize>i, <u8>l);
    let diff: f32 = scale * <f32>l + min - v;
    diff = useMad ? Mathf.abs(diff) : diff * diff;
    bestError += load<f32>(w + (<usize>i << 2)) * diff;
  }
  if (nstep < 1) {
    store<f32>(theMin, -min);
    return scale;
  }
  for (let is = 0; is <= nstep; is++) {
    iscale = (rmin + rdelta * <f32>is + fmax) / (max - min);
    let sumL: f32 = 0;
    let sumL2: f32 = 0;
    let sumXL: f32 = 0;
    for (let i = 0; i < n; i++) {
      const v = load<f32>(x + (<usize>i << 2));
      const l = clampI(nearestInt(iscale * (v - min)), 0, nmax);
      store<u8>(SCRATCH_LAUX + <usize>i, <u8>l);
      const wl: f32 = load<f32>(w + (<usize>i << 2)) * <f32>l;
      sumL += wl;
      sumL2 += wl * <f32>l;
      sumXL += wl * v;
    }
    const D: f32 = sumW * sumL2 - sumL * sumL;
    if (D > 0) {
      let thisScale: f32 = (sumW * sumXL - sumX * sumL) / D;
      let thisMin: f32 = (sumL2 * sumX - sumL * sumXL) / D;
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = sumXL / sumL2;
      }
      let curError: f32 = 0;
      for (let i = 0; i < n; i++) {
        let diff: f32 = thisScale * <f32>load<u8>(SCRATCH_LAUX + <usize>i) + thisMin - load<f32>(x + (<usize>i << 2));
        diff = useMad ? Mathf.abs(diff) : diff * diff;
        curError += load<f32>(w + (<usize>i << 2)) * diff;
      }
      if (curError < bestError) {
        memory.copy(L, SCRATCH_LAUX, <usize>n);
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  store<f32>(theMin, -min);
  return scale;
}

/** The first value of largest |x| among the n floats at x (sign kept); 0 when all are ±0. */
// @ts-ignore: decorator
@inline function signedMax(n: i32, x: usize): f32 {
  let max: f32 = 0;
  let amax: f32 = 0;
  for (let i = 0; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    if (Mathf.abs(v) > amax) {
      amax = Mathf.abs(v);
      max = v;
    }
  }
  return max;
}

/** make_qx_quants, rmse_type 1, no importance weights (q6_K): L[i] = level + nmax; returns the scale. */
export function makeQxQuants(n: i32, nmax: i32, x: usize, L: usize): f32 {
  const max = signedMax(n, x);
  if (Mathf.abs(max) < GROUP_MAX_EPS) {
    memory.fill(L, 0, <usize>n);
    return 0;
  }
  const fmax = <f32>nmax;
  let iscale: f32 = -fmax / max;
  let sumlx: f32 = 0;
  let suml2: f32 = 0;
  for (let i = 0; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    const l = clampI(nearestInt(iscale * v), -nmax, nmax - 1);
    store<u8>(L + <usize>i, <u8>(l + nmax));
    const w: f32 = v * v;
    sumlx += w * v * <f32>l;
    suml2 += w * <f32>l * <f32>l;
  }
  let scale: f32 = suml2 != 0 ? sumlx / suml2 : 0;
  let best: f32 = scale * sumlx;
  for (let is = -9; is <= 9; is++) {
    if (is == 0) continue;
    iscale = -(fmax + <f32>0.1 * <f32>is) / max;
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const v = load<f32>(x + (<usize>i << 2));
      const l = clampI(nearestInt(iscale * v), -nmax, nmax - 1);
      const w: f32 = v * v;
      sumlx += w * v * <f32>l;
      suml2 += w * <f32>l * <f32>l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (let i = 0; i < n; i++) {
        const l = clampI(nearestInt(iscale * load<f32>(x + (<usize>i << 2))), -nmax, nmax - 1);
        store<u8>(L + <usize>i, <u8>(l + nmax));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

/** make_q3_quants with do_rmse (q3_K): L[i] = level + nmax; returns the scale. */
export function makeQ3Quants(n: i32, nmax: i32, x: usize, L: usize): f32 {
  const max = signedMax(n, x);
  if (Mathf.abs(max) < GROUP_MAX_EPS) {
    memory.fill(L, 0, <usize>n);
    return 0;
  }
  const iscale: f32 = -<f32>nmax / max;
  const lv = SCRATCH_LEVELS;
  let sumlx: f32 = 0;
  let suml2: f32 = 0;
  for (let i = 0; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    const l = clampI(nearestInt(iscale * v), -nmax, nmax - 1);
    store<i8>(lv + <usize>i, <i8>l);
    const w: f32 = v * v;
    sumlx += w * v * <f32>l;
    suml2 += w * <f32>l * <f32>l;
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const v = load<f32>(x + (<usize>i << 2));
      const w: f32 = v * v;
      const li = <i32>load<i8>(lv + <usize>i);
      let slx: f32 = sumlx - w * v * <f32>li;
      if (slx > 0) {
        let sl2: f32 = suml2 - w * <f32>li * <f32>li;
        const newL = clampI(nearestInt(v * sl2 / slx), -nmax, nmax - 1);
        if (newL != li) {
          slx += w * v * <f32>newL;
          sl2 += w * <f32>newL * <f32>newL;
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            store<i8>(lv + <usize>i, <i8>newL);
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (changed == 0) break;
  }
  for (let i = 0; i < n; i++) store<u8>(L + <usize>i, <u8>(<i32>load<i8>(lv + <usize>i) + nmax));
  return suml2 > 0 ? sumlx / suml2 : 0;
}

/** get_scale_min_k4: the 6-bit scale (low byte) and min (next byte) of sub-block j from the 12 bytes at q. */
// @ts-ignore: decorator
@inline export function scaleK4(j: i32, q: usize): i32 {
  return j < 4 ? <i32>load<u8>(q + <usize>j) & 63 : (<i32>load<u8>(q + <usize>(j + 4)) & 15) | ((<i32>load<u8>(q + <usize>(j - 4)) >> 6) << 4);
}
// @ts-ignore: decorator
@inline export function minK4(j: i32, q: usize): i32 {
  return j < 4 ? <i32>load<u8>(q + <usize>(j + 4)) & 63 : (<i32>load<u8>(q + <usize>(j + 4)) >> 4) | ((<i32>load<u8>(q + <usize>j) >> 6) << 4);
}

/** The 6-bit stored scale (0..63) of q3_K sub-block g from the 12 bytes at q. */
// @ts-ignore: decorator
@inline export function scaleQ3K(g: i32, q: usize): i32 {
  const low = g < 8 ? <i32>load<u8>(q + <usize>g) & 15 : <i32>load<u8>(q + <usize>(g - 8)) >> 4;
  return low | (((<i32>load<u8>(q + <usize>(8 + (g & 3))) >> (2 * (g >> 2))) & 3) << 4);
}

/**
 * The q4_K / q5_K super-block header and levels for the 256 floats at x: per 32-value sub-block a make_qkx2_quants
 * fit, then 6-bit scales and mins packed into the 12 bytes at o + 4 and d, dmin (fp16) at o, o + 2; finally the levels
 * (0..nmax, into SCRATCH_L) those stored values give, clamp(round((x + dmin·m_j) / (d·sc_j))), a sub-block whose
 * d·sc_j is 0 keeping its fitted levels. The caller packs SCRATCH_L.
 */
export function quantizeScaleMinK4(x: usize, nmax: i32, rmin: f32, nstep: i32, o: usize): void {
  const sb = o + 4;
  let maxScale: f32 = 0;
  let maxMin: f32 = 0;
  for (let j = 0; j < 8; j++) {
    const xj = x + (<usize>j << 7);
    let sumX2: f32 = 0;
    for (let l = 0; l < 32; l++) {
      const v = load<f32>(xj + (<usize>l << 2));
      sumX2 += v * v;
    }
    const avX = Mathf.sqrt(sumX2 / 32);
    for (let l = 0; l < 32; l++) store<f32>(SCRATCH_WEIGHTS + (<usize>l << 2), avX + Mathf.abs(load<f32>(xj + (<usize>l << 2))));
    const minAt = SCRATCH_MINS + (<usize>j << 2);
    const scale = makeQkx2Quants(32, nmax, xj, SCRATCH_WEIGHTS, SCRATCH_L + (<usize>j << 5), minAt, rmin, <f32>0.1, nstep, false);
    store<f32>(SCRATCH_SCALES + (<usize>j << 2), scale);
    if (scale > maxScale) maxScale = scale;
    const min = load<f32>(minAt);
    if (min > maxMin) maxMin = min;
  }
  const invScale: f32 = maxScale > 0 ? <f32>63.0 / maxScale : 0;
  const invMin: f32 = maxMin > 0 ? <f32>63.0 / maxMin : 0;
  memory.fill(sb, 0, 12);
  for (let j = 0; j < 8; j++) {
    let ls = nearestInt(invScale * load<f32>(SCRATCH_SCALES + (<usize>j << 2))) & 0xff;
    let lm = nearestInt(invMin * load<f32>(SCRATCH_MINS + (<usize>j << 2))) & 0xff;
    if (ls > 63) ls = 63;
    if (lm > 63) lm = 63;
    if (j < 4) {
      store<u8>(sb + <usize>j, <u8>ls);
      store<u8>(sb + <usize>(j + 4), <u8>lm);
    } else {
      store<u8>(sb + <usize>(j + 4), <u8>((ls & 15) | ((lm & 15) << 4)));
      store<u8>(sb + <usize>(j - 4), load<u8>(sb + <usize>(j - 4)) | <u8>((ls >> 4) << 6));
      store<u8>(sb + <usize>j, load<u8>(sb + <usize>j) | <u8>((lm >> 4) << 6));
    }
  }
  store<u16>(o, <u16>f32ToF16(maxScale / 63));
  store<u16>(o + 2, <u16>f32ToF16(maxMin / 63));
  const d = loadF16(o);
  const dmin = loadF16(o + 2);
  for (let j = 0; j < 8; j++) {
    const dl: f32 = d * <f32>scaleK4(j, sb);
    if (dl == 0) continue;
    const dm: f32 = dmin * <f32>minK4(j, sb);
    for (let i = 32 * j; i < 32 * j + 32; i++) {
      store<u8>(SCRATCH_L + <usize>i, <u8>clampI(nearestInt((load<f32>(x + (<usize>i << 2)) + dm) / dl), 0, nmax));
    }
  }
}

/** Pack the 256 2-bit levels at SCRATCH_L into the 64 bytes at dst (q2_K / q3_K layout). */
export function pack2Bit(dst: usize): void {
  for (let j = 0; j < 256; j += 128) {
    for (let l = 0; l < 32; l++) {
      const p = SCRATCH_L + <usize>(j + l);
      const byte = <u32>load<u8>(p) | (<u32>load<u8>(p + 32) << 2) | (<u32>load<u8>(p + 64) << 4) | (<u32>load<u8>(p + 96) << 6);
      store<u8>(dst + <usize>((j >> 2) + l), <u8>byte);
    }
  }
}

// ---- q8_K ----------------------------------------------------------------------------------------------------

/** quantize_row_q8_K_ref on one block: the 256 floats at src into the 292 bytes at dst. */
export function quantizeQ8KBlock(src: usize, dst: usize): void {
  let m = f32x4.splat(0);
  for (let k: usize = 0; k < 1024; k += 16) m = f32x4.max(m, f32x4.abs(v128.load(src + k)));
  const amax = Mathf.max(Mathf.max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), Mathf.max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  memory.fill(dst, 0, Q8_K_BYTES);
  if (amax == 0) return;
  let max: f32 = 0;
  for (let k: usize = 0; k < 1024; k += 4) {
    const v = load<f32>(src + k);
    if (Mathf.abs(v) == amax) {
      max = v;
      break;
    }
  }
  const iscale: f32 = <f32>-127.0 / max;
  const scale = f32x4.splat(iscale);
  const magic = f32x4.splat(12582912.0);
  const mantissa = i32x4.splat(0x7fffff);
  const bias = i32x4.splat(0x400000);
  const top = i32x4.splat(127);
  for (let g: usize = 0; g < 16; g++) {
    const p = src + (g << 6);
    const a = i32x4.min_s(i32x4.sub(v128.and(f32x4.add(f32x4.mul(v128.load(p), scale), magic), mantissa), bias), top);
    const b = i32x4.min_s(i32x4.sub(v128.and(f32x4.add(f32x4.mul(v128.load(p, 16), scale), magic), mantissa), bias), top);
    const c = i32x4.min_s(i32x4.sub(v128.and(f32x4.add(f32x4.mul(v128.load(p, 32), scale), magic), mantissa), bias), top);
    const e = i32x4.min_s(i32x4.sub(v128.and(f32x4.add(f32x4.mul(v128.load(p, 48), scale), magic), mantissa), bias), top);
    v128.store(dst + 4 + (g << 4), i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, b), i16x8.narrow_i32x4_s(c, e)));
    const s = i32x4.add(i32x4.add(a, b), i32x4.add(c, e));
    const sum = (i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1)) + (i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3));
    store<i16>(dst + 260 + (g << 1), <i16>sum);
  }
  store<f32>(dst, <f32>1.0 / iscale);
}

// ---- decode: 16 levels of group g (values 16g .. 16g + 15) as i8x16, its scale and min ------------------------

/** What q3_K (4) and q6_K (32) subtract from their stored levels; 0 for the formats with mins. */
// @ts-ignore: decorator
@inline export function levelOffsetK(fmt: i32): i32 {
  return fmt == Q3_K ? 4 : fmt == Q6_K ? 32 : 0;
}

/** The stored (unsigned) levels of group g: level + levelOffsetK, 0..3 (q2_K), 0..7, 0..15, 0..31, 0..63 (q6_K). */
// @ts-ignore: decorator
@inline export function storedLevels16(fmt: i32, wb: usize, g: i32): v128 {
  const half = <usize>((g & 1) << 4);
  if (fmt == Q2_K || fmt == Q3_K) {
    const c = <usize>(g >> 3) << 5;
    const shift = ((g >> 1) & 3) << 1;
    const low = v128.and(i8x16.shr_u(v128.load(wb + (fmt == Q2_K ? 16 : 32) + c + half), shift), i8x16.splat(3));
    if (fmt == Q2_K) return low;
    const high = v128.and(i8x16.shr_u(v128.load(wb + half), g >> 1), i8x16.splat(1));
    return v128.or(low, i8x16.shl(high, 2));
  }
  if (fmt == Q4_K || fmt == Q5_K) {
    const c = <usize>(g >> 2) << 5;
    const bytes = v128.load(wb + (fmt == Q4_K ? 16 : 48) + c + half);
    const q = ((g >> 1) & 1) == 0 ? v128.and(bytes, i8x16.splat(15)) : i8x16.shr_u(bytes, 4);
    if (fmt == Q4_K) return q;
    const high = v128.and(i8x16.shr_u(v128.load(wb + 16 + half), g >> 1), i8x16.splat(1));
    return v128.or(q, i8x16.shl(high, 4));
  }
  // q6_K
  const c = <usize>(g >> 3);
  const r = (g >> 1) & 3;
  const bytes = v128.load(wb + (c << 6) + (<usize>(r & 1) << 5) + half);
  const low = r < 2 ? v128.and(bytes, i8x16.splat(15)) : i8x16.shr_u(bytes, 4);
  const high = v128.and(i8x16.shr_u(v128.load(wb + 128 + (c << 5) + half), r << 1), i8x16.splat(3));
  return v128.or(low, i8x16.shl(high, 4));
}

/** The signed levels of group g: storedLevels16 − levelOffsetK. */
// @ts-ignore: decorator
@inline export function levels16(fmt: i32, wb: usize, g: i32): v128 {
  const stored = storedLevels16(fmt, wb, g);
  return levelOffsetK(fmt) == 0 ? stored : i8x16.sub(stored, i8x16.splat(<i8>levelOffsetK(fmt)));
}

// @ts-ignore: decorator
@inline export function scale16(fmt: i32, wb: usize, g: i32): i32 {
  if (fmt == Q2_K) return <i32>load<u8>(wb + <usize>g) & 15;
  if (fmt == Q3_K) return scaleQ3K(g, wb + 96) - 32;
  if (fmt == Q4_K || fmt == Q5_K) return scaleK4(g >> 1, wb + 4);
  return <i32>load<i8>(wb + 192 + <usize>g);
}

// @ts-ignore: decorator
@inline export function min16(fmt: i32, wb: usize, g: i32): i32 {
  if (fmt == Q2_K) return <i32>load<u8>(wb + <usize>g) >> 4;
  if (fmt == Q4_K || fmt == Q5_K) return minK4(g >> 1, wb + 4);
  return 0;
}

/** Offsets of the fp16 d and dmin in a super-block. */
// @ts-ignore: decorator
@inline export function dOffset(fmt: i32): usize {
  return fmt == Q2_K ? 80 : fmt == Q3_K ? 108 : fmt == Q6_K ? 208 : 0;
}
// @ts-ignore: decorator
@inline export function dminOffset(fmt: i32): usize {
  return fmt == Q2_K ? 82 : 2;
}

// ---- dot, matvec, matmul --------------------------------------------------------------------------------------

// Helpers of the dedicated q4_K / q6_K row dots (q4_K.ts, q6_K.ts), which follow rowdot.ts's recipe: i16 lanes and
// i32x4.dot_i16x8_s, vector constants read from KQ_CONSTANTS, and a never-taken branch (settledK) after each 64 values
// so V8 does not issue every load of a super-block first and spill.

/**
 * v128 constants of the q4_K / q6_K dots (i16 lanes unless said; 0xff swizzle indices select 0: those go through
 * i8x16.swizzle, the others through lookup16).
 */
const KQ_CONSTANTS: usize = memory.data<u8>([
  15, 0, 15, 0, 15, 0, 15, 0, 15, 0, 15, 0, 15, 0, 15, 0, // 0: i16 15
  0x30, 0, 0x30, 0, 0x30, 0, 0x30, 0, 0x30, 0, 0x30, 0, 0x30, 0, 0x30, 0, // 16: i16 0x30
  3, 0, 3, 0, 3, 0, 3, 0, 3, 0, 3, 0, 3, 0, 3, 0, // 32: i16 3
  0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11, // 48: q4_K scale bytes: low bits of scales 0-7, mins 0-7
  0xff, 0xff, 0xff, 0xff, 0, 1, 2, 3, 0xff, 0xff, 0xff, 0xff, 4, 5, 6, 7, // 64: q4_K bytes holding the top 2 bits
  63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0, // 80: u8 masks of the low bits kept in place
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15, // 96: u8 masks of the low bits in the high nibble
  0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, // 112: u8 0x30
  8, 0xff, 8, 0xff, 9, 0xff, 9, 0xff, 10, 0xff, 10, 0xff, 11, 0xff, 11, 0xff, // 128: mins 0-3, each twice, as i16
  12, 0xff, 12, 0xff, 13, 0xff, 13, 0xff, 14, 0xff, 14, 0xff, 15, 0xff, 15, 0xff, // 144: mins 4-7, each twice, as i16
  0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15, // 160: q6_K scales in (half, 16-value part) order
], 16);
export const KQ_I16_15: usize = 0;
export const KQ_I16_0x30: usize = 16;
export const KQ_I16_3: usize = 32;
export const KQ_SCALE_LOW: usize = 48;
export const KQ_SCALE_TOP: usize = 64;
export const KQ_MASK_LOW: usize = 80;
export const KQ_MASK_HIGH: usize = 96;
export const KQ_U8_0x30: usize = 112;
export const KQ_MINS_0_3: usize = 128;
export const KQ_MINS_4_7: usize = 144;
export const KQ_Q6_SCALE_ORDER: usize = 160;

// @ts-ignore: decorator
@inline export function kqconst(offset: usize): v128 {
  return v128.load(KQ_CONSTANTS + offset);
}

/** The 6-bit scales of sub-blocks 0-7 (u8 lanes 0-7) and mins (lanes 8-15) from the 12 bytes at q (get_scale_min_k4). */
// @ts-ignore: decorator
@inline export function scalesMinsK4(q: usize): v128 {
  const bytes = v128.load(q);
  const low = lookup16(bytes, kqconst(KQ_SCALE_LOW));
  const top = i8x16.swizzle(bytes, kqconst(KQ_SCALE_TOP));
  const lowBits = v128.or(v128.and(low, kqconst(KQ_MASK_LOW)), v128.and(i8x16.shr_u(low, 4), kqconst(KQ_MASK_HIGH)));
  return v128.or(lowBits, v128.and(i8x16.shr_u(top, 2), kqconst(KQ_U8_0x30)));
}

/**
 * The integers of a q4_K / q5_K super-block at wb against the q8_K block at xb (as intsOf), from its chunk sums
 * c0..c3 (pairHalvesI32x4 of sub-blocks 2c, 2c + 1): isum = Σ_j scale_j × Σ_j, summs = Σ_j min_j × (bsum_2j + bsum_2j+1).
 */
// @ts-ignore: decorator
@inline export function intsK4(wb: usize, xb: usize, c0: v128, c1: v128, c2: v128, c3: v128): v128 {
  const sm = scalesMinsK4(wb + 4);
  const scales16 = i16x8.extend_low_i8x16_u(sm);
  const sums = i32x4.add(
    i32x4.mul(pairSumsI32x4(c0, c1), i32x4.extend_low_i16x8_u(scales16)),
    i32x4.mul(pairSumsI32x4(c2, c3), i32x4.extend_high_i16x8_u(scales16)),
  );
  const bsums = xb + 260;
  const mins = i32x4.add(
    i32x4.dot_i16x8_s(v128.load(bsums), i8x16.swizzle(sm, kqconst(KQ_MINS_0_3))),
    i32x4.dot_i16x8_s(v128.load(bsums, 16), i8x16.swizzle(sm, kqconst(KQ_MINS_4_7))),
  );
  return pairHalvesI32x4(sums, mins);
}

/**
 * Relaxed build: pairHalvesI32x4(Σ sub-block 2c, Σ sub-block 2c + 1) of q4_K / q5_K chunk c with the q8 values at xq,
 * from its levels as u8x16 (0..31): values 0-15 and 16-31 of sub-block 2c (lo0, lo1) and of 2c + 1 (hi0, hi1).
 */
// @ts-ignore: decorator
@inline export function relaxedChunkSumsK4(lo0: v128, lo1: v128, hi0: v128, hi1: v128, xq: usize): v128 {
  const zero = i32x4.splat(0);
  const lo = settledK(dotLevelsAdd(v128.load(xq, 16), lo1, dotLevelsAdd(v128.load(xq), lo0, zero)), xq);
  const hi = dotLevelsAdd(v128.load(xq, 48), hi1, dotLevelsAdd(v128.load(xq, 32), hi0, zero));
  return pairHalvesI32x4(lo, hi);
}

/** v, computed before this point (see rowdot.ts); guard is any value that is never 0 here. */
// @ts-ignore: decorator
@inline export function settledK(v: v128, guard: usize): v128 {
  let r = i32x4.splat(0);
  if (guard != 0) r = v;
  return r;
}

/** [a0 + a2, a1 + a3, b0 + b2, b1 + b3]: lanes 0-1 sum to Σ a, lanes 2-3 to Σ b. */
// @ts-ignore: decorator
@inline export function pairHalvesI32x4(a: v128, b: v128): v128 {
  return i32x4.add(i32x4.shuffle(a, b, 0, 1, 4, 5), i32x4.shuffle(a, b, 2, 3, 6, 7));
}

/** [Σ lanes 0-1 of u, Σ lanes 2-3 of u, Σ lanes 0-1 of v, Σ lanes 2-3 of v]. */
// @ts-ignore: decorator
@inline export function pairSumsI32x4(u: v128, v: v128): v128 {
  return i32x4.add(i32x4.shuffle(u, v, 0, 2, 4, 6), i32x4.shuffle(u, v, 1, 3, 5, 7));
}

// @ts-ignore: decorator
@inline export function hsumI32x4K(v: v128): i32 {
  return (i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1)) + (i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3));
}

/** The integers of one q2_K / q3_K super-block at wb against the q8_K block at xb (as intsOf; file comment). */
// @ts-ignore: decorator
@inline export function superBlockIntsK(fmt: i32, wb: usize, xb: usize): v128 {
  let acc = i32x4.splat(0);
  let offsetSums = 0; // relaxed build: Σ_g scale_g × bsum_g, for the formats whose stored levels carry an offset
  for (let g = 0; g < 16; g++) {
    const q = v128.load(xb + 4 + (<usize>g << 4));
    if (ASC_FEATURE_RELAXED_SIMD) {
      // stored levels (0..63) with the q8 values in pairs, then × scale in i16x8.dot: Σ scale × stored level × q8
      const scale = scale16(fmt, wb, g);
      acc = i32x4.add(acc, i32x4.dot_i16x8_s(pairDotLevels(q, storedLevels16(fmt, wb, g)), i16x8.splat(<i16>scale)));
      if (levelOffsetK(fmt) != 0) offsetSums += scale * <i32>load<i16>(xb + 260 + (<usize>g << 1));
    } else {
      const w = levels16(fmt, wb, g);
      const products = i16x8.add(i16x8.extmul_low_i8x16_s(w, q), i16x8.extmul_high_i8x16_s(w, q));
      acc = i32x4.add(acc, i32x4.mul(i32x4.extadd_pairwise_i16x8_s(products), i32x4.splat(scale16(fmt, wb, g))));
    }
  }
  let isum = hsumI32x4K(acc);
  if (ASC_FEATURE_RELAXED_SIMD) isum -= levelOffsetK(fmt) * offsetSums;
  let summs = 0;
  if (hasMinK(fmt)) {
    for (let g = 0; g < 16; g++) summs += min16(fmt, wb, g) * <i32>load<i16>(xb + 260 + (<usize>g << 1));
  }
  return i32x4.replace_lane(i32x4.replace_lane(i32x4.splat(0), 0, isum), 2, summs);
}

/**
 * The generic K-quant loops below take a format as a class type D whose inlined method ints(wb, xb) returns the exact
 * integers of the super-block at wb against the q8_K block at xb as i32x4 [i0, i1, m0, m1]: isum = i0 + i1, summs =
 * m0 + m1 (zeros for the formats without mins). The class is never instantiated: ints is called on a null D, and
 * being inlined it costs no call (a function value would cost an indirect call per super-block).
 */
// @ts-ignore: decorator
@inline function intsOf<D>(wb: usize, xb: usize): v128 {
  return changetype<D>(0).ints(wb, xb);
}

/** The f32 term of one super-block from its integers: (d_x × d) × f32(isum) [− (d_x × dmin) × f32(summs)]. */
// @ts-ignore: decorator
@inline function termK(fmt: i32, ints: v128, wb: usize, xb: usize): f32 {
  const dx = load<f32>(xb);
  const scaled: f32 = (dx * loadF16(wb + dOffset(fmt))) * <f32>(i32x4.extract_lane(ints, 0) + i32x4.extract_lane(ints, 1));
  if (!hasMinK(fmt)) return scaled;
  return scaled - (dx * loadF16(wb + dminOffset(fmt))) * <f32>(i32x4.extract_lane(ints, 2) + i32x4.extract_lane(ints, 3));
}

/** Dot of the K-quant row at w (nb super-blocks) with the q8_K row at x: terms summed in f32 in block order. */
// @ts-ignore: decorator
@inline export function rowDotK<D>(fmt: i32, w: usize, x: usize, nb: i32): f32 {
  const B = blockBytesK(fmt);
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const wb = w + <usize>b * B;
    const xb = x + <usize>b * Q8_K_BYTES;
    sum += termK(fmt, intsOf<D>(wb, xb), wb, xb);
  }
  return sum;
}

/** out[t][r] = rowDotK(W[r], X[t]) for r in [rowStart, rowEnd), t < nTokens (strides in bytes). */
// @ts-ignore: decorator
@inline export function matmulK<D>(
  fmt: i32, w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32,
): void {
  const nb = cols >> 8;
  const rowBytes = <usize>nb * blockBytesK(fmt);
  for (let r = rowStart; r < rowEnd; r++) {
    const row = w + <usize>r * rowBytes;
    const o = out + (<usize>r << 2);
    for (let t = 0; t < nTokens; t++) store<f32>(o + <usize>t * <usize>outStride, rowDotK<D>(fmt, row, x + <usize>t * <usize>xStride, nb));
  }
}

/**
 * out[r] = rowDotK(W[r], x) for r in [rowStart, rowEnd), four rows a pass: their integers go into the lanes of
 * i32x4 [isum] and [summs], and lane r of one f32x4 takes row r's terms with rowDotK's operations in rowDotK's order
 * (the same bits); the x block's scale and sums are read once for the four. Rows past the last four: rowDotK.
 */
// @ts-ignore: decorator
@inline export function matvecK<D>(fmt: i32, w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  const nb = cols >> 8;
  const B = blockBytesK(fmt);
  const rowBytes = <usize>nb * B;
  let r = rowStart;
  for (; r + 3 < rowEnd; r += 4) {
    const w0 = w + <usize>r * rowBytes;
    const w1 = w0 + rowBytes;
    const w2 = w1 + rowBytes;
    const w3 = w2 + rowBytes;
    let acc = f32x4.splat(0); // (4) f32: rows r .. r + 3
    for (let b = 0; b < nb; b++) {
      const o = <usize>b * B;
      const xb = x + <usize>b * Q8_K_BYTES;
      const v0 = settledK(intsOf<D>(w0 + o, xb), xb);
      const v1 = settledK(intsOf<D>(w1 + o, xb), xb);
      const v2 = settledK(intsOf<D>(w2 + o, xb), xb);
      const v3 = settledK(intsOf<D>(w3 + o, xb), xb);
      const p01 = pairSumsI32x4(v0, v1); // [isum_0, summs_0, isum_1, summs_1]
      const p23 = pairSumsI32x4(v2, v3);
      const dx = f32x4.splat(load<f32>(xb));
      const d = loadF16x4Subnormals(w0 + o + dOffset(fmt), w1 + o + dOffset(fmt), w2 + o + dOffset(fmt), w3 + o + dOffset(fmt));
      let term = f32x4.mul(f32x4.mul(dx, d), f32x4.convert_i32x4_s(i32x4.shuffle(p01, p23, 0, 2, 4, 6)));
      if (hasMinK(fmt)) {
        const dmin = loadF16x4Subnormals(w0 + o + dminOffset(fmt), w1 + o + dminOffset(fmt), w2 + o + dminOffset(fmt), w3 + o + dminOffset(fmt));
        term = f32x4.sub(term, f32x4.mul(f32x4.mul(dx, dmin), f32x4.convert_i32x4_s(i32x4.shuffle(p01, p23, 1, 3, 5, 7))));
      }
      acc = f32x4.add(acc, term);
    }
    v128.store(out + (<usize>r << 2), acc);
  }
  for (; r < rowEnd; r++) store<f32>(out + (<usize>r << 2), rowDotK<D>(fmt, w + <usize>r * rowBytes, x, nb));
}

// ---- dequantize, axpy ------------------------------------------------------------------------------------------

/**
 * Values 16g .. 16g + 15 of the super-block at wb as four f32x4 written to dst (axpy: out += w × value):
 * value = (d × scale) × level − dmin × min, each product rounded to f32, as the reference.
 */
// @ts-ignore: decorator
@inline function group16(fmt: i32, wb: usize, g: i32, dst: usize, axpy: bool, weight: v128): void {
  const q = levels16(fmt, wb, g);
  const dl = f32x4.splat(loadF16(wb + dOffset(fmt)) * <f32>scale16(fmt, wb, g));
  const ml = f32x4.splat(hasMinK(fmt) ? loadF16(wb + dminOffset(fmt)) * <f32>min16(fmt, wb, g) : 0);
  const lo = i16x8.extend_low_i8x16_s(q);
  const hi = i16x8.extend_high_i8x16_s(q);
  for (let k = 0; k < 4; k++) {
    const half = k < 2 ? lo : hi;
    const ints = (k & 1) == 0 ? i32x4.extend_low_i16x8_s(half) : i32x4.extend_high_i16x8_s(half);
    let v = f32x4.mul(dl, f32x4.convert_i32x4_s(ints));
    if (hasMinK(fmt)) v = f32x4.sub(v, ml);
    const p = dst + (<usize>k << 4);
    v128.store(p, axpy ? f32x4.add(v128.load(p), f32x4.mul(weight, v)) : v);
  }
}

// @ts-ignore: decorator
@inline export function dequantizeK(fmt: i32, src: usize, dst: usize, n: i32): void {
  const B = blockBytesK(fmt);
  const nb = n >> 8;
  for (let b = 0; b < nb; b++) {
    for (let g = 0; g < 16; g++) group16(fmt, src + <usize>b * B, g, dst + (<usize>b << 10) + (<usize>g << 6), false, f32x4.splat(0));
  }
}

// @ts-ignore: decorator
@inline export function axpyK(fmt: i32, out: usize, w: f32, row: usize, n: i32): void {
  const B = blockBytesK(fmt);
  const nb = n >> 8;
  const weight = f32x4.splat(w);
  for (let b = 0; b < nb; b++) {
    for (let g = 0; g < 16; g++) group16(fmt, row + <usize>b * B, g, out + (<usize>b << 10) + (<usize>g << 6), true, weight);
  }
}
