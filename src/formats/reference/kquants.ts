/**
 * Shared pieces of the K-quant references (q2_K .. q6_K and their dot partner q8_K): 256-value super-blocks.
 * The scale searches reproduce ggml-quants.c's make_qx_quants (rmse_type 1, no importance weights),
 * make_q3_quants (do_rmse) and make_qkx2_quants step by step in float (every + − × / through Math.fround,
 * no fused multiply-add, sums in the same order), so the quantized bytes equal quantize_row_q*_K_ref's.
 */
import { f32Bits, readF16, writeF16 } from "./scalar.js";

/** Values per super-block (ggml's QK_K). */
export const QK_K = 256;
/** q8_K: f32 d, 256 × int8, 16 × int16 sums of 16 consecutive int8. */
export const Q8_K_BYTES = 292;
/** ggml's GROUP_MAX_EPS (1e-15f): a sub-block whose largest |x| is below it is all zeros. */
export const GROUP_MAX_EPS = Math.fround(1e-15);

export const fr = Math.fround;

/**
 * ggml's nearest_int: add 1.5 × 2^23 in float and read the low 23 mantissa bits (round half to even for
 * |x| < 2^22; outside that range, and for NaN, the same bit pattern arithmetic as C).
 */
export function nearestInt(x: number): number {
  return (f32Bits(x + 12582912) & 0x7fffff) - 0x400000;
}

export function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/** Signed int8 of the low byte of v (C's conversion to int8_t). */
export function toI8(v: number): number {
  return (v << 24) >> 24;
}

/**
 * make_qkx2_quants: an affine fit x ≈ scale × L + min (min <= 0, L in 0..nmax) of x[xo .. xo + n) under the
 * weights w[0 .. n), searching nstep + 1 inverse scales (rmin + rdelta × is + nmax) / (max − min).
 * Writes L[lo .. lo + n); returns [scale, −min].
 */
export function makeQkx2Quants(
  n: number, nmax: number, x: Float32Array, xo: number, w: Float32Array, L: Uint8Array, lo: number,
  rmin: number, rdelta: number, nstep: number, useMad: boolean,
): [number, number] {
  const Laux = new Uint8Array(n); // (n)
  let min = x[xo];
  let max = x[xo];
  let sumW = w[0];
  let sumX = fr(sumW * x[xo]);
  for (let i = 1; i < n; i++) {
    const v = x[xo + i];
    if (v < min) min = v;
    if (v > max) max = v;
    sumW = fr(sumW + w[i]);
    sumX = fr(sumX + fr(w[i] * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    return [0, -min];
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = clamp(nearestInt(fr(iscale * fr(x[xo + i] - min))), 0, nmax);
    L[lo + i] = l;
    let diff = fr(fr(fr(scale * l) + min) - x[xo + i]);
    diff = useMad ? Math.abs(diff) : fr(diff * diff);
    bestError = fr(bestError + fr(w[i] * diff));
  }
  if (nstep < 1) return [scale, -min];
  for (let is = 0; is <= nstep; is++) {
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = clamp(nearestInt(fr(iscale * fr(x[xo + i] - min))), 0, nmax);
      Laux[i] = l;
      const wl = fr(w[i] * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * x[xo + i]));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        let diff = fr(fr(fr(thisScale * Laux[i]) + thisMin) - x[xo + i]);
        diff = useMad ? Math.abs(diff) : fr(diff * diff);
        curError = fr(curError + fr(w[i] * diff));
      }
      if (curError < bestError) {
        L.set(Laux, lo);
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

/** The first value of largest |x| in x[xo .. xo + n) (sign kept) and that |x|. */
function signedMax(n: number, x: Float32Array, xo: number): [number, number] {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i];
    }
  }
  return [max, amax];
}

/**
 * make_qx_quants with rmse_type 1 and no importance weights (q6_K): symmetric levels −nmax .. nmax − 1, weights x²,
 * the best of 19 inverse scales −(nmax + 0.1 × is) / max. Writes L[lo + i] = level + nmax; returns the scale.
 */
export function makeQxQuants(n: number, nmax: number, x: Float32Array, xo: number, L: Uint8Array, lo: number): number {
  const [max, amax] = signedMax(n, x, xo);
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  let iscale = fr(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i];
    const l = clamp(nearestInt(fr(iscale * v)), -nmax, nmax - 1);
    L[lo + i] = l + nmax;
    const w = fr(v * v);
    sumlx = fr(sumlx + fr(fr(w * v) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  let scale = suml2 !== 0 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  const tenth = fr(0.1);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fr(-fr(nmax + fr(tenth * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i];
      const l = clamp(nearestInt(fr(iscale * v)), -nmax, nmax - 1);
      const w = fr(v * v);
      sumlx = fr(sumlx + fr(fr(w * v) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      for (let i = 0; i < n; i++) L[lo + i] = nmax + clamp(nearestInt(fr(iscale * x[xo + i])), -nmax, nmax - 1);
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

/**
 * make_q3_quants with do_rmse (q3_K): levels −nmax .. nmax − 1 from −nmax / max, then up to 5 rounds of moving
 * single levels while the weighted (x²) fit improves. Writes L[lo + i] = level + nmax; returns the scale.
 */
export function makeQ3Quants(n: number, nmax: number, x: Float32Array, xo: number, L: Uint8Array, lo: number): number {
  const [max, amax] = signedMax(n, x, xo);
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  const iscale = fr(-nmax / max);
  const level = new Int8Array(n); // (n)
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i];
    const l = clamp(nearestInt(fr(iscale * v)), -nmax, nmax - 1);
    level[i] = l;
    const w = fr(v * v);
    sumlx = fr(sumlx + fr(fr(w * v) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i];
      const w = fr(v * v);
      let slx = fr(sumlx - fr(fr(w * v) * level[i]));
      if (slx > 0) {
        let sl2 = fr(suml2 - fr(fr(w * level[i]) * level[i]));
        const newL = clamp(nearestInt(fr(fr(v * sl2) / slx)), -nmax, nmax - 1);
        if (newL !== level[i]) {
          slx = fr(slx + fr(fr(w * v) * newL));
          sl2 = fr(sl2 + fr(fr(w * newL) * newL));
          if (sl2 > 0 && fr(fr(slx * slx) * suml2) > fr(fr(sumlx * sumlx) * sl2)) {
            level[i] = newL;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (changed === 0) break;
  }
  for (let i = 0; i < n; i++) L[lo + i] = level[i] + nmax;
  return suml2 > 0 ? fr(sumlx / suml2) : 0;
}

/** get_scale_min_k4: the 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes at q[o ..]. */
export function scaleMinK4(j: number, q: Uint8Array, o: number): [number, number] {
  if (j < 4) return [q[o + j] & 63, q[o + j + 4] & 63];
  return [(q[o + j + 4] & 0xf) | ((q[o + j - 4] >> 6) << 4), (q[o + j + 4] >> 4) | ((q[o + j] >> 6) << 4)];
}

/**
 * The q4_K / q5_K super-block header and levels: per 32-value sub-block a make_qkx2_quants fit weighted by
 * sqrt(mean x²) + |x|, then scales and mins quantized to 6 bits against the largest of each; writes d and dmin (fp16)
 * at dst[o], dst[o + 2] and the 12 packed scale/min bytes at dst[o + 4 ..], then sets L[i] (0..nmax) to the levels
 * those stored (rounded) values give: clamp(round((x + dmin·m_j) / (d·sc_j))), a sub-block whose d·sc_j is 0 keeping
 * its fitted levels. The caller packs L.
 */
export function quantizeScaleMinK4(
  x: Float32Array, xo: number, nmax: number, rmin: number, nstep: number, L: Uint8Array, dst: Uint8Array, o: number,
): void {
  const so = o + 4;
  const weights = new Float32Array(32); // (32)
  const scales = new Float32Array(8); // (8 sub-blocks)
  const mins = new Float32Array(8); // (8 sub-blocks)
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(x[xo + 32 * j + l] * x[xo + 32 * j + l]));
    const avX = fr(Math.sqrt(fr(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = fr(avX + Math.abs(x[xo + 32 * j + l]));
    const [scale, min] = makeQkx2Quants(32, nmax, x, xo + 32 * j, weights, L, 32 * j, rmin, fr(0.1), nstep, false);
    scales[j] = scale;
    mins[j] = min;
    if (scales[j] > maxScale) maxScale = scales[j];
    if (mins[j] > maxMin) maxMin = mins[j];
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  dst.fill(0, so, so + 12);
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(fr(invScale * scales[j])) & 0xff);
    const lm = Math.min(63, nearestInt(fr(invMin * mins[j])) & 0xff);
    if (j < 4) {
      dst[so + j] = ls;
      dst[so + j + 4] = lm;
    } else {
      dst[so + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      dst[so + j - 4] |= (ls >> 4) << 6;
      dst[so + j] |= (lm >> 4) << 6;
    }
  }
  const d = writeF16(dst, o, fr(maxScale / 63));
  const dmin = writeF16(dst, o + 2, fr(maxMin / 63));
  for (let j = 0; j < 8; j++) {
    const [sc, m] = scaleMinK4(j, dst, so);
    const dl = fr(d * sc);
    if (dl === 0) continue;
    const dm = fr(dmin * m);
    for (let i = 32 * j; i < 32 * j + 32; i++) L[i] = clamp(nearestInt(fr(fr(x[xo + i] + dm) / dl)), 0, nmax);
  }
}

/** d, dmin and the scale and min of every 16-value group of the q4_K / q5_K super-block at row[o ..] (levels not touched). */
export function decodeScalesMinsK4(row: Uint8Array, o: number, out: KBlockLevels): void {
  out.d = readF16(row, o);
  out.dmin = readF16(row, o + 2);
  for (let j = 0; j < 8; j++) {
    const [sc, m] = scaleMinK4(j, row, o + 4);
    out.scale[2 * j] = out.scale[2 * j + 1] = sc;
    out.min[2 * j] = out.min[2 * j + 1] = m;
  }
}

/** Pack 2-bit levels L[0 .. 256) as q2_K / q3_K do: byte 32c + l holds values 128c + l + 32k in bits 2k (k = 0..3). */
export function pack2Bit(L: Uint8Array, dst: Uint8Array, o: number): void {
  for (let j = 0; j < QK_K; j += 128) {
    for (let l = 0; l < 32; l++) {
      dst[o + j / 4 + l] = (L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6)) & 0xff;
    }
  }
}

/** The q8_K block at byte b of x: its float scale d. */
export function q8KScale(x: Uint8Array, b: number): number {
  return new DataView(x.buffer, x.byteOffset + b, 4).getFloat32(0, true);
}

/** Int16 bsums[j] of the q8_K block at byte b. */
export function q8KBsum(x: Uint8Array, b: number, j: number): number {
  return ((x[b + 260 + 2 * j] | (x[b + 261 + 2 * j] << 8)) << 16) >> 16;
}

/** The int8 quant j of the q8_K block at byte b. */
export function q8KQuant(x: Uint8Array, b: number, j: number): number {
  return (x[b + 4 + j] << 24) >> 24;
}

/** One K-quant super-block decoded to integers: per value its signed level, per 16 values a scale and a min. */
export interface KBlockLevels {
  /** (256) level of each value, offsets applied (q3_K: −4 .. 3, q6_K: −32 .. 31, others 0 .. 31). */
  q: Int8Array;
  /** (16) integer scale of values 16g .. 16g + 15. */
  scale: Int16Array;
  /** (16) integer min of values 16g .. 16g + 15 (0 for q3_K / q6_K). */
  min: Int16Array;
  /** fp16 super-block scale d and min scale dmin, as floats (dmin 0 when the format has none). */
  d: number;
  dmin: number;
}

export function newLevels(): KBlockLevels {
  return { q: new Int8Array(QK_K), scale: new Int16Array(16), min: new Int16Array(16), d: 0, dmin: 0 };
}

/**
 * The dot of a K-quant row with a q8_K row as llama.cpp's vec_dot_q*_K_q8_K computes it: per super-block the exact
 * integers isum = Σ_g scale_g × Σ q8·q and summs = Σ_g min_g × bsums_g, then the float term
 * (d_x·d) × isum − (d_x·dmin) × summs (each product rounded to float); super-blocks summed in double.
 */
export function kquantDot(
  name: string, row: Uint8Array, x: Uint8Array, n: number, bytesPerBlock: number, hasMin: boolean,
  decode: (row: Uint8Array, o: number, out: KBlockLevels) => void,
): number {
  const nb = n / QK_K;
  if (!Number.isInteger(nb)) throw new RangeError(`${name}: ${n} values is not a whole number of ${QK_K}-value blocks`);
  if (row.length < nb * bytesPerBlock) throw new RangeError(`${name}: row holds ${row.length} bytes, needs ${nb * bytesPerBlock}`);
  if (x.length < nb * Q8_K_BYTES) throw new RangeError(`${name}: x (q8_K) holds ${x.length} bytes, needs ${nb * Q8_K_BYTES}`);
  const lv = newLevels();
  let sum = 0;
  for (let b = 0; b < nb; b++) {
    decode(row, b * bytesPerBlock, lv);
    const xo = b * Q8_K_BYTES;
    let isum = 0;
    let summs = 0;
    for (let g = 0; g < 16; g++) {
      let s = 0;
      for (let i = 16 * g; i < 16 * g + 16; i++) s += q8KQuant(x, xo, i) * lv.q[i];
      isum += lv.scale[g] * s;
      summs += lv.min[g] * q8KBsum(x, xo, g);
    }
    const dx = q8KScale(x, xo);
    const scaled = fr(fr(dx * lv.d) * isum);
    sum += hasMin ? fr(scaled - fr(fr(dx * lv.dmin) * summs)) : scaled;
  }
  return sum;
}

/** Dequantize through the decoded levels: value = f32(f32(d × scale) × q) − f32(dmin × min), as ggml's dequantize_row_q*_K. */
export function kquantDequantize(
  name: string, src: Uint8Array, dst: Float32Array, bytesPerBlock: number, hasMin: boolean,
  decode: (row: Uint8Array, o: number, out: KBlockLevels) => void,
): void {
  const nb = dst.length / QK_K;
  if (!Number.isInteger(nb)) throw new RangeError(`${name}: ${dst.length} values is not a whole number of ${QK_K}-value blocks`);
  if (src.length < nb * bytesPerBlock) throw new RangeError(`${name}: src holds ${src.length} bytes, needs ${nb * bytesPerBlock}`);
  const lv = newLevels();
  for (let b = 0; b < nb; b++) {
    decode(src, b * bytesPerBlock, lv);
    for (let g = 0; g < 16; g++) {
      const dl = fr(lv.d * lv.scale[g]);
      const ml = fr(lv.dmin * lv.min[g]);
      for (let i = 16 * g; i < 16 * g + 16; i++) dst[b * QK_K + i] = hasMin ? fr(fr(dl * lv.q[i]) - ml) : fr(dl * lv.q[i]);
    }
  }
}
