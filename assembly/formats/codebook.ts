// kvsplit's own codebook KV formats iq3_nl, iq2_nl, iq3_e8 and iq2_e8: one generic shape for all, parameterized by a
// codebook code `cb` (CB_*: index bits | 8 for a one-byte scale; a compile-time constant at every call, so each
// inlined copy keeps only its own branches).
//
// Block of 32 values (src/formats/reference/codebook.ts is the scalar reference and documents the layout):
//   iq3_nl (14 B): fp16 d | qs[8] | qh[4]      iq2_nl (10 B): fp16 d | qs[8]
//   iq3_e8 (13 B): u8 e   | qs[8] | qh[4]      iq2_e8 (9 B):  u8 e   | qs[8]
//   qs byte j (0..7) holds the low two index bits of values j, j+8, j+16, j+24 in bits 0-1, 2-3, 4-5, 6-7;
//   qh byte v & 3, bit v >> 2 holds index bit 2 of value v (3-bit formats): each i32 lane g of a splatted qh then
//   holds its four values' (4g .. 4g + 3, and 16 + 4g .. 16 + 4g + 3) bits at one bit position per byte, g and 4 + g,
//   which one multiply by 2^(3 − g) brings to bit 3 and bit 7 of every byte (codebookQh).
//   value = d × LEVELS[index]; LEVELS are the Lloyd-Max levels of a unit Gaussian (8 or 4 of them) scaled to ±127,
//   which fit K and V after the Hadamard rotation makes them near-Gaussian; d = fp16 d or e8Value(e) (e8-scale.ts).
// Dot partner: q8_0 blocks, the dot formula iq4_nl's (lanes of Σ level·q summed per block, × (d_x·d)).
// Byte offsets everywhere; n counts values and is a whole number of 32-value blocks.

import { axpyQuants16, dequantQuants16, dotI8x16, f32ToF16, hsumF32x4, loadF16, lookup16 } from "./common";
import { e8Below, e8Value } from "./e8-scale";

/** Codebook codes: index bits, | 8 for a one-byte (e8) scale. */
export const CB_IQ3_NL: i32 = 3;
export const CB_IQ2_NL: i32 = 2;
export const CB_IQ3_E8: i32 = 11;
export const CB_IQ2_E8: i32 = 10;

// @ts-ignore: decorator
@inline function cbBits(cb: i32): i32 {
  return cb & 7;
}

/** Bytes of the block scale: where qs starts. */
// @ts-ignore: decorator
@inline function scaleBytes(cb: i32): usize {
  return (cb & 8) != 0 ? 1 : 2;
}

/** The block's scale d. */
// @ts-ignore: decorator
@inline export function codebookScale(cb: i32, block: usize): f32 {
  return (cb & 8) != 0 ? e8Value(<u32>load<u8>(block)) : loadF16(block);
}

const BLOCK: i32 = 32;
const Q8_0_BYTES: usize = 34;
/** Blocks whose largest magnitude is below this get d = 0 and index 0 everywhere (ggml's GROUP_MAX_EPS). */
const GROUP_MAX_EPS: f32 = 1e-15;
/** Trial scales: the largest |x| maps to 127 × t/16 (exact binary fractions) for t = 14..27 (iq3_nl), 18, 20, .., 40 (iq2_nl). */
// @ts-ignore: decorator
@inline function trialFirst(cb: i32): i32 {
  return cbBits(cb) == 3 ? 14 : 18;
}
// @ts-ignore: decorator
@inline function trialLast(cb: i32): i32 {
  return cbBits(cb) == 3 ? 27 : 40;
}
// @ts-ignore: decorator
@inline function trialStep(cb: i32): i32 {
  return cbBits(cb) == 3 ? 1 : 2;
}

/** Ascending int8 levels: iq3_nl's 8 at 0, iq2_nl's 4 at 8. */
const LEVELS: usize = memory.data<i8>([-127, -79, -45, -14, 14, 45, 79, 127, -127, -38, 38, 127]);
/** Midpoints between neighbouring levels (a value at or above a midpoint takes the upper level): iq3_nl's 7, iq2_nl's 3. */
const MIDPOINTS: usize = memory.data<f32>([-103, -62, -29.5, 0, 29.5, 62, 103, -82.5, 0, 82.5]);

// @ts-ignore: decorator
@inline export function codebookBlockBytes(cb: i32): usize {
  return scaleBytes(cb) + (cbBits(cb) == 3 ? 12 : 8);
}

// @ts-ignore: decorator
@inline function level(cb: i32, index: i32): i32 {
  return <i32>load<i8>(LEVELS + <usize>(cbBits(cb) == 3 ? index : index + 8));
}

/**
 * v128 constants of the decoders, read from memory where used (V8 rebuilds a v128 immediate from scalar moves on every
 * loop iteration; see common.ts VECTOR_CONSTANTS): iq3_nl's 8 levels by decoder index (index bit 2 in bit 3, so
 * levels 4..7 sit at 8..11), iq2_nl's 4, the first-eight-lanes mask, i8 3, codebookQh's multipliers 2^(3 − g) (i32),
 * i8 8.
 */
const CODEBOOK_CONSTANTS: usize = memory.data<i8>([
  -127, -79, -45, -14, 0, 0, 0, 0, 14, 45, 79, 127, 0, 0, 0, 0, // 0: iq3_nl levels
  -127, -38, 38, 127, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 16: iq2_nl levels
  -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0, // 32: lanes 0..7
  3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, // 48: i8 3
  8, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, // 64: i32 8, 4, 2, 1
  8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, // 80: i8 8
], 16);

// @ts-ignore: decorator
@inline function levelTable(cb: i32): v128 {
  return v128.load(CODEBOOK_CONSTANTS + (cbBits(cb) == 3 ? 0 : 16));
}

/** The index of the level nearest y (binary search over the midpoints; a value on a midpoint goes up). */
// @ts-ignore: decorator
@inline function nearestIndex(cb: i32, y: f32): i32 {
  const mid = MIDPOINTS + (cbBits(cb) == 3 ? 0 : 28);
  let i = 0;
  if (cbBits(cb) == 3) {
    if (y >= load<f32>(mid + 12)) i = 4;
    if (y >= load<f32>(mid + (<usize>(i + 1) << 2))) i += 2;
  } else if (y >= load<f32>(mid + 4)) {
    i = 2;
  }
  if (y >= load<f32>(mid + (<usize>i << 2))) i += 1;
  return i;
}

/**
 * The index pairs of a block's qs bytes for both halves: the 8 bytes splatted to both halves of a vector, lanes 0..7
 * keeping their bits (pair 0 for half 0 in bits 0-1, pair 2 for half 1 in bits 4-5), lanes 8..15 shifted right by 2
 * (pair 1 in bits 0-1, pair 3 in bits 4-5). i16 shifts, as there is no x64 instruction for i8x16.shr_u: lanes 0..7
 * and 8..15 are whole i16 lanes, so a second i16 shift by 4 gives half 1's pairs exactly.
 */
// @ts-ignore: decorator
@inline export function codebookPairs(cb: i32, block: usize): v128 {
  const qs = v128.load64_splat(block + scaleBytes(cb));
  return v128.bitselect(qs, i16x8.shr_u(qs, 2), v128.load(CODEBOOK_CONSTANTS + 32));
}

/**
 * The block's qh (3-bit formats) splatted and i32 lane g multiplied by 2^(3 − g): byte lane j then holds index bit 2
 * of value j in bit 3 and of value 16 + j in bit 7 (the layout above); zeros for the 2-bit formats, which have none,
 * and for cb 0 (no codebook; nothing is loaded).
 */
// @ts-ignore: decorator
@inline export function codebookQh(cb: i32, block: usize): v128 {
  if (cbBits(cb) != 3) return i32x4.splat(0);
  return i32x4.mul(v128.load32_splat(block + scaleBytes(cb) + 8), v128.load(CODEBOOK_CONSTANTS + 64));
}

/**
 * The int8 levels of half `half` (values 0..15 or 16..31) from codebookPairs and codebookQh: a table lookup by the
 * decoder index, the pair of low bits with index bit 2 in bit 3.
 */
// @ts-ignore: decorator
@inline export function codebookLevelsOf(cb: i32, pairs: v128, qh: v128, half: i32): v128 {
  let index = v128.and(half == 0 ? pairs : i16x8.shr_u(pairs, 4), v128.load(CODEBOOK_CONSTANTS + 48));
  if (cbBits(cb) == 3) index = v128.or(index, v128.and(half == 0 ? qh : i32x4.shr_u(qh, 4), v128.load(CODEBOOK_CONSTANTS + 80)));
  return lookup16(levelTable(cb), index);
}

/** The int8 levels of values 0..15 (half 0) or 16..31 (half 1) of the block at `block`; then a table lookup. */
// @ts-ignore: decorator
@inline export function codebookLevels(cb: i32, block: usize, half: i32): v128 {
  return codebookLevelsOf(cb, codebookPairs(cb, block), codebookQh(cb, block), half);
}

/** Index i of value j placed in the block's qs (as a u64): its low two bits at byte j & 7, bits 2·(j >> 3). */
// @ts-ignore: decorator
@inline function qsBits(i: i32, j: i32): u64 {
  return <u64>(i & 3) << <u64>(((j & 7) << 3) + ((j >> 3) << 1));
}

/** Index i of value j placed in the block's qh (as a u32): its bit 2 at byte j & 3, bit j >> 2. */
// @ts-ignore: decorator
@inline function qhBit(i: i32, j: i32): u32 {
  return <u32>(i >> 2) << <u32>(((j & 3) << 3) + (j >> 2));
}

// e8Fit's packed indices (module globals: every thread has its own instance)
let fitQs: u64 = 0;
let fitQh: u32 = 0;

/**
 * Σ (x − d·L)² (f32, in value order) of the block at x under scale code e, each value at the level nearest
 * x · (1 / d) for d = e8Value(e) (code 0: all zeros, index 0); the indices packed into fitQs, fitQh.
 */
// @ts-ignore: decorator
@inline function e8Fit(cb: i32, x: usize, e: u32): f32 {
  fitQs = 0;
  fitQh = 0;
  if (e == 0) {
    let zeros: f32 = 0;
    for (let j = 0; j < BLOCK; j++) zeros += load<f32>(x + (<usize>j << 2)) * load<f32>(x + (<usize>j << 2));
    return zeros;
  }
  const scale = e8Value(e);
  const inverse: f32 = <f32>1 / scale;
  let err: f32 = 0;
  let qs: u64 = 0;
  let qh: u32 = 0;
  for (let j = 0; j < BLOCK; j++) {
    const v = load<f32>(x + (<usize>j << 2));
    const i = nearestIndex(cb, inverse * v);
    const t = v - scale * <f32>level(cb, i);
    err += t * t;
    qs |= qsBits(i, j);
    qh |= qhBit(i, j);
  }
  fitQs = qs;
  fitQh = qh;
  return err;
}

/** Trial t's inverse scale: the largest |x| (amax) maps to 127 × t / 16. */
// @ts-ignore: decorator
@inline function trialInverse(t: i32, amax: f32): f32 {
  const top: i32 = 127 * t;
  return <f32>top / <f32>16 / amax;
}

/** Vectors of four trials: iq3_nl's 14 trials in 4 (the last two lanes unused), iq2_nl's 12 in 3. */
// @ts-ignore: decorator
@inline function trialVectors(cb: i32): i32 {
  return (((trialLast(cb) - trialFirst(cb)) / trialStep(cb)) >> 2) + 1;
}

/**
 * The levels are symmetric, so trialSums finds a level's magnitude from |y| against the positive midpoints alone:
 * 127 less the steps between neighbouring magnitudes whose midpoint |y| is below. A y on a midpoint goes up, to the
 * larger magnitude when y > 0 and the smaller when y < 0, so a negative x's thresholds are the next f32 above each
 * midpoint ("below m" then means |y| <= m; y has x's sign, or is −0, whose magnitude is below every threshold).
 * (f32 bit patterns) iq3_nl's 3 for x >= 0 at 0 and x < 0 at 12, iq2_nl's 1 at 24 and 28.
 */
const MAGNITUDE_THRESHOLDS: usize = memory.data<u32>([
  0x41ec0000, 0x42780000, 0x42ce0000, 0x41ec0001, 0x42780001, 0x42ce0001, // iq3_nl: 29.5, 62, 103; each next f32 up
  0x42a50000, 0x42a50001, // iq2_nl: 82.5; the next f32 up
]);
/** The steps between neighbouring level magnitudes, each at its midpoint's threshold: iq3_nl's 3 at 0, iq2_nl's 1 at 12. */
const MAGNITUDE_STEPS: usize = memory.data<f32>([31, 34, 48, 89]);

/** Lane k (0..3) of an f32x4. */
// @ts-ignore: decorator
@inline function laneF32(v: v128, k: i32): f32 {
  return k == 0 ? f32x4.extract_lane(v, 0) : k == 1 ? f32x4.extract_lane(v, 1) : k == 2 ? f32x4.extract_lane(v, 2) : f32x4.extract_lane(v, 3);
}

// trialSums's results, lane k for trial vector q's lane k (module globals: every thread has its own instance)
let trialSumXL: v128 = f32x4.splat(0);
let trialSumL2: v128 = f32x4.splat(0);

/**
 * Σ x·L and Σ L² (f32, in value order) of the block at x for the four trials of vector q, a trial a lane: lane k's
 * operations are the scalar search's for trial trialFirst + trialStep·(4q + k), each value's level the one nearest
 * y = x · id (the level nearestIndex finds, built from exact integer steps: its magnitude from |y| as
 * MAGNITUDE_THRESHOLDS says, negative unless y >= 0, so a NaN y takes the lowest level as a failed comparison does in
 * the reference).
 */
// @ts-ignore: decorator
@inline function trialSums(cb: i32, x: usize, amax: f32, q: i32): void {
  const t0 = trialFirst(cb) + trialStep(cb) * (q << 2);
  const trials = i32x4.add(i32x4.splat(t0), i32x4.mul(i32x4(0, 1, 2, 3), i32x4.splat(trialStep(cb))));
  const id = f32x4.div(f32x4.div(f32x4.convert_i32x4_s(i32x4.mul(trials, i32x4.splat(127))), f32x4.splat(16)), f32x4.splat(amax));
  const nSteps = cbBits(cb) == 3 ? 3 : 1;
  const steps = MAGNITUDE_STEPS + (cbBits(cb) == 3 ? 0 : 12);
  const firstThresholds = MAGNITUDE_THRESHOLDS + (cbBits(cb) == 3 ? 0 : 24);
  const top = f32x4.splat(127);
  const signBit = i32x4.splat(i32.MIN_VALUE);
  let sumxl = f32x4.splat(0);
  let suml2 = f32x4.splat(0);
  for (let j = 0; j < BLOCK; j++) {
    const xj = load<f32>(x + (<usize>j << 2));
    const v = f32x4.splat(xj);
    const y = f32x4.mul(id, v);
    const magnitude = f32x4.abs(y);
    const thresholds = firstThresholds + (xj < 0 ? <usize>nSteps << 2 : 0); // a negative x's set follows the other
    let lm = top;
    for (let m = 0; m < nSteps; m++) {
      const below = f32x4.lt(magnitude, f32x4.splat(load<f32>(thresholds + (<usize>m << 2))));
      lm = f32x4.sub(lm, v128.and(below, f32x4.splat(load<f32>(steps + (<usize>m << 2)))));
    }
    const l = v128.xor(lm, v128.andnot(signBit, f32x4.ge(y, f32x4.splat(0))));
    sumxl = f32x4.add(sumxl, f32x4.mul(v, l));
    suml2 = f32x4.add(suml2, f32x4.mul(l, l));
  }
  trialSumXL = sumxl;
  trialSumL2 = suml2;
}

/**
 * Quantize n floats at src into blocks at dst, byte for byte as the reference (quantizeRowCodebook): for each trial
 * scale, indices by nearest level, then the least-squares scale Σ x·L / Σ L²; the trial with the largest
 * (Σ x·L)² / Σ L² (the smallest squared error) wins, the first on ties. Sums in f32, in value order, four trials at
 * once in the lanes of a vector (trialSums); the winner's indices are then found again and packed (qs in a u64, qh in
 * a u32): no scratch memory, which threads would share. The e8 formats then keep the better of the two codes around
 * d, every value's level refitted under each (e8Fit).
 */
// @ts-ignore: decorator
@inline export function quantizeRowCodebook(cb: i32, src: usize, dst: usize, n: i32): void {
  const bytes = codebookBlockBytes(cb);
  const nBlocks = n / BLOCK;
  for (let b = 0; b < nBlocks; b++) {
    const x = src + (<usize>b << 7); // f32 (32)
    const out = dst + <usize>b * bytes;
    let amax: f32 = 0;
    for (let j = 0; j < BLOCK; j++) amax = max(amax, abs<f32>(load<f32>(x + (<usize>j << 2))));
    let d: f32 = 0;
    let bestQs: u64 = 0;
    let bestQh: u32 = 0;
    if (amax >= GROUP_MAX_EPS) {
      // every trial's sums, four trials a vector, then the best in trial order, then its indices packed
      let bestScore: f32 = -1;
      let bestTrial = 0; // none yet (trials start at 14)
      for (let q = 0; q < trialVectors(cb); q++) {
        trialSums(cb, x, amax, q);
        for (let k = 0; k < 4; k++) {
          const t = trialFirst(cb) + trialStep(cb) * ((q << 2) + k);
          if (t > trialLast(cb)) break;
          const sumxl = laneF32(trialSumXL, k);
          const suml2 = laneF32(trialSumL2, k);
          const score = sumxl * sumxl / suml2;
          if (score > bestScore) {
            bestScore = score;
            d = sumxl / suml2;
            bestTrial = t;
          }
        }
      }
      if ((cb & 8) == 0 && bestTrial != 0) {
        // (the e8 formats refit their indices below)
        const id = trialInverse(bestTrial, amax);
        for (let j = 0; j < BLOCK; j++) {
          const i = nearestIndex(cb, id * load<f32>(x + (<usize>j << 2)));
          bestQs |= qsBits(i, j);
          bestQh |= qhBit(i, j);
        }
      }
    }
    if ((cb & 8) != 0) {
      // the better of the two codes around d, the levels refitted under each (the reference's e8Code)
      let e: u32 = 0;
      bestQs = 0;
      bestQh = 0;
      if (d > 0) {
        const lo = e8Below(d);
        const errLo = e8Fit(cb, x, lo);
        e = lo;
        bestQs = fitQs;
        bestQh = fitQh;
        if (lo < 255 && e8Fit(cb, x, lo + 1) < errLo) {
          e = lo + 1;
          bestQs = fitQs;
          bestQh = fitQh;
        }
      }
      store<u8>(out, <u8>e);
    } else {
      store<u16>(out, <u16>f32ToF16(d));
    }
    store<u64>(out + scaleBytes(cb), bestQs);
    if (cbBits(cb) == 3) store<u32>(out + scaleBytes(cb) + 8, bestQh);
  }
}

/** Decode n values of blocks at src into f32 at dst. */
// @ts-ignore: decorator
@inline export function dequantizeRowCodebook(cb: i32, src: usize, dst: usize, n: i32): void {
  const bytes = codebookBlockBytes(cb);
  const nBlocks = n / BLOCK;
  for (let b = 0; b < nBlocks; b++) {
    const block = src + <usize>b * bytes;
    const out = dst + (<usize>b << 7);
    const d = f32x4.splat(codebookScale(cb, block));
    const pairs = codebookPairs(cb, block);
    const qh = codebookQh(cb, block);
    dequantQuants16(out, codebookLevelsOf(cb, pairs, qh, 0), d);
    dequantQuants16(out + 64, codebookLevelsOf(cb, pairs, qh, 1), d);
  }
}

/** Dot of a row (n values) with x already quantized to q8_0: per block the lanes of Σ level·q × (d_x·d), then hsum. */
// @ts-ignore: decorator
@inline export function dotCodebook(cb: i32, row: usize, x: usize, n: i32): f32 {
  const bytes = codebookBlockBytes(cb);
  const nBlocks = n / BLOCK;
  let acc = f32x4.splat(0);
  for (let b = 0; b < nBlocks; b++) {
    const block = row + <usize>b * bytes;
    const y = x + <usize>b * Q8_0_BYTES;
    const pairs = codebookPairs(cb, block);
    const qh = codebookQh(cb, block);
    const sumi = i32x4.add(dotI8x16(codebookLevelsOf(cb, pairs, qh, 0), v128.load(y, 2)), dotI8x16(codebookLevelsOf(cb, pairs, qh, 1), v128.load(y, 18)));
    const scale = loadF16(y) * codebookScale(cb, block);
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sumi), f32x4.splat(scale)));
  }
  return hsumF32x4(acc);
}

/** out[i] += w × value[i] for the n values of a row (V accumulation); value = level × d as dequantizeRow computes it. */
// @ts-ignore: decorator
@inline export function axpyCodebook(cb: i32, out: usize, w: f32, row: usize, n: i32): void {
  const bytes = codebookBlockBytes(cb);
  const nBlocks = n / BLOCK;
  const w4 = f32x4.splat(w);
  for (let b = 0; b < nBlocks; b++) {
    const block = row + <usize>b * bytes;
    const d = f32x4.splat(codebookScale(cb, block));
    const pairs = codebookPairs(cb, block);
    const qh = codebookQh(cb, block);
    const o = out + (<usize>b << 7);
    axpyQuants16(o, codebookLevelsOf(cb, pairs, qh, 0), d, w4);
    axpyQuants16(o + 64, codebookLevelsOf(cb, pairs, qh, 1), d, w4);
  }
}
