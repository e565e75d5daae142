// Shared inline helpers for the block-format kernels (not re-exported by index.ts, so never wasm exports).
// fp16 <-> fp32 conversions reproduce ggml's GGML_FP32_TO_FP16 / GGML_FP16_TO_FP32 bit for bit (round to nearest
// even, NaN -> sign | 0x7e00); bf16 conversions reproduce GGML_FP32_TO_BF16; q8 block quantization reproduces
// quantize_row_q8_0_ref (roundf: ties away from zero, scale 1 / (amax / 127) kept in float).

// ---- fp16 ----------------------------------------------------------------------------------------------------

/**
 * fp16 bits (low 16 bits of h) -> f32, exactly, with no subnormal f32 operand (x64 cores take a microcode assist,
 * about a hundred cycles, for each float operation that meets one): exponents 1..30 by integer rebias, (h & 0x7fff)
 * << 13 plus 112 << 23; exponent 0 (zero, subnormals) as its 10-bit mantissa times 2^-24; exponent 31 (inf, NaN) gets
 * every f32 exponent bit; the sign is or'ed back.
 */
// @ts-ignore: decorator
@inline export function f16ToF32(h: u32): f32 {
  const bits = h & 0x7fff;
  let magnitude: u32 = bits < 0x400 ? reinterpret<u32>(<f32>bits * reinterpret<f32>(0x33800000)) : (bits << 13) + 0x38000000;
  if (bits > 0x7bff) magnitude |= 0x7f800000;
  return reinterpret<f32>(magnitude | ((h & 0x8000) << 16));
}

/** f32 -> fp16 bits, rounded to nearest even by letting a float addition do the rounding. */
// @ts-ignore: decorator
@inline export function f32ToF16(x: f32): u32 {
  let base: f32 = (Mathf.abs(x) * reinterpret<f32>(0x77800000)) * reinterpret<f32>(0x08800000); // × 2^112 × 2^-110
  const w: u32 = reinterpret<u32>(x);
  const twoW: u32 = w + w;
  const sign: u32 = w & 0x80000000;
  let bias: u32 = twoW & 0xff000000;
  if (bias < 0x71000000) bias = 0x71000000;
  base = reinterpret<f32>((bias >> 1) + 0x07800000) + base;
  const bits: u32 = reinterpret<u32>(base);
  const nonSign: u32 = ((bits >> 13) & 0x7c00) + (bits & 0x0fff);
  return (sign >> 16) | (twoW > 0xff000000 ? 0x7e00 : nonSign);
}

/** Four fp16 values (one per i32 lane, zero-extended) -> f32x4 (exponent rebias, see f16BitsToF32x4). */
// @ts-ignore: decorator
@inline export function f16x4ToF32x4(halves: v128): v128 {
  return f16BitsToF32x4(halves);
}

/** f32x4 -> fp16 bits in each i32 lane (0..0xffff), the vector form of f32ToF16. */
// @ts-ignore: decorator
@inline export function f32x4ToF16x4(x: v128): v128 {
  let base = f32x4.mul(f32x4.mul(f32x4.abs(x), f32x4.splat(reinterpret<f32>(0x77800000))), f32x4.splat(reinterpret<f32>(0x08800000)));
  const twoW = i32x4.add(x, x);
  const sign = i32x4.shr_u(v128.and(x, i32x4.splat(0x80000000)), 16);
  // unsigned max(bias, 0x71000000): flip the sign bits and compare signed
  const bias0 = v128.and(twoW, i32x4.splat(0xff000000));
  const flip = i32x4.splat(0x80000000);
  const biasSmall = i32x4.lt_s(v128.xor(bias0, flip), i32x4.splat(0x71000000 ^ 0x80000000));
  const bias = v128.bitselect(i32x4.splat(0x71000000), bias0, biasSmall);
  base = f32x4.add(i32x4.add(i32x4.shr_u(bias, 1), i32x4.splat(0x07800000)), base);
  const nonSign = i32x4.add(v128.and(i32x4.shr_u(base, 13), i32x4.splat(0x7c00)), v128.and(base, i32x4.splat(0x0fff)));
  const isNan = i32x4.gt_s(v128.xor(twoW, flip), i32x4.splat(0xff000000 ^ 0x80000000));
  return v128.or(sign, v128.bitselect(i32x4.splat(0x7e00), nonSign, isNan));
}

// ---- bf16 ----------------------------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline export function bf16ToF32(h: u32): f32 {
  return reinterpret<f32>(h << 16);
}

// @ts-ignore: decorator
@inline export function f32ToBf16(x: f32): u32 {
  const w: u32 = reinterpret<u32>(x);
  if ((w & 0x7fffffff) > 0x7f800000) return (w >> 16) | 64;
  return (w + (0x7fff + ((w >> 16) & 1))) >> 16;
}

/** f32x4 -> bf16 bits in each i32 lane. */
// @ts-ignore: decorator
@inline export function f32x4ToBf16x4(x: v128): v128 {
  const isNan = i32x4.gt_s(v128.and(x, i32x4.splat(0x7fffffff)), i32x4.splat(0x7f800000));
  const quiet = v128.or(i32x4.shr_u(x, 16), i32x4.splat(64));
  const rounded = i32x4.shr_u(i32x4.add(x, i32x4.add(i32x4.splat(0x7fff), v128.and(i32x4.shr_u(x, 16), i32x4.splat(1)))), 16);
  return v128.bitselect(quiet, rounded, isNan);
}

// ---- horizontal sums and small vector helpers ---------------------------------------------------------------

// @ts-ignore: decorator
@inline export function hsumF32x4(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

// @ts-ignore: decorator
@inline export function hsumI32x4(v: v128): i32 {
  return (i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1)) + (i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3));
}

/** Products of 16 int8 pairs summed into four i32 lanes: widen i8 -> i16, then i32x4.dot_i16x8_s. */
// @ts-ignore: decorator
@inline export function dotI8x16(a: v128, b: v128): v128 {
  return i32x4.add(
    i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(a), i16x8.extend_low_i8x16_s(b)),
    i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(a), i16x8.extend_high_i8x16_s(b)),
  );
}

// ---- relaxed SIMD dots (kernels-relaxed.wasm only: call them under `if (ASC_FEATURE_RELAXED_SIMD)`) -----------
// relaxed_dot_i8x16_i7x16 multiplies int8 lanes of its first operand by lanes of its second, which the spec leaves
// implementation-defined only where the second operand's top bit is set. The kernels pass unsigned weight levels
// (0..63) second and the q8 activations (any int8) first, so every product, and every pair sum (|2 × 128 × 127| <
// 2^15: no i16 saturation), is exact: the same integers as the plain build's widened dots, on any engine and tier.

/** acc + Σ q8 × level over 16 values (four consecutive products per i32 lane); level lanes in 0..127. */
// @ts-ignore: decorator
@inline export function dotLevelsAdd(q8: v128, levels: v128, acc: v128): v128 {
  return i32x4.relaxed_dot_i8x16_i7x16_add_s(q8, levels, acc);
}

/**
 * dotLevelsAdd in either build: the relaxed dot where the build has it, else its plain equal (levels widened as
 * unsigned, pair sums by i32x4.dot_i16x8_s, then the pairs of each lane added): the same integers. (Levels up to 255
 * only where the engine's relaxed dot was probed to read them as u8 without saturating: q8_0_x4.ts's offset weights.)
 */
// @ts-ignore: decorator
@inline export function dotLevelsAddEither(q8: v128, levels: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.relaxed_dot_i8x16_i7x16_add_s(q8, levels, acc);
  const lo = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(q8), i16x8.extend_low_i8x16_u(levels)); // pair sums, lanes 0-7
  const hi = i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(q8), i16x8.extend_high_i8x16_u(levels));
  return i32x4.add(acc, i32x4.add(i32x4.shuffle(lo, hi, 0, 2, 4, 6), i32x4.shuffle(lo, hi, 1, 3, 5, 7)));
}

/** q8 × level of values 2i and 2i + 1 summed in i16 lane i; level lanes in 0..127. */
// @ts-ignore: decorator
@inline export function pairDotLevels(q8: v128, levels: v128): v128 {
  return i16x8.relaxed_dot_i8x16_i7x16_s(q8, levels);
}

/** u8 v128 constants (nibble masks and offsets, bit-plane values), read from memory where used (see VECTOR_CONSTANTS). */
const U8_CONSTANTS: usize = memory.data<u8>([
  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, // 0: u8 15
  16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, // 16: u8 16
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, // 32: u8 1
  8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, // 48: u8 8
  4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, // 64: u8 4
], 16);
export const U8_15: usize = 0;
export const U8_16: usize = 16;
export const U8_1: usize = 32;
export const U8_8: usize = 48;
export const U8_4: usize = 64;

// @ts-ignore: decorator
@inline export function u8const(offset: usize): v128 {
  return v128.load(U8_CONSTANTS + offset);
}

/**
 * i8x16.swizzle for index lanes known to be within 0..15 (table lookups by nibbles or codebook indices, byte
 * spreads by constant patterns): there i8x16.relaxed_swizzle is deterministic (the spec leaves only indices of 16 and
 * more implementation-defined), and x64 engines lower it to one pshufb, where swizzle also needs a saturating add to
 * zero the out-of-range lanes. The same bytes in both builds; never for indices that may be 16 or more.
 */
// @ts-ignore: decorator
@inline export function lookup16(table: v128, indices: v128): v128 {
  return ASC_FEATURE_RELAXED_SIMD ? i8x16.relaxed_swizzle(table, indices) : i8x16.swizzle(table, indices);
}

/**
 * Lanes of a where mask (i32 lanes all ones or all zeros) is set, else b's: i32x4.relaxed_laneselect (one blend) where
 * the build has it, v128.bitselect otherwise; the same for such masks.
 */
// @ts-ignore: decorator
@inline export function selectLanes(a: v128, b: v128, mask: v128): v128 {
  return ASC_FEATURE_RELAXED_SIMD ? i32x4.relaxed_laneselect(a, b, mask) : v128.bitselect(a, b, mask);
}

/**
 * The high nibbles of the bytes in v, in place of the low ones (u8 lanes 0..15): a 16-bit shift and a mask, cheaper
 * in V8 than i8x16.shr_u, which has no x64 instruction.
 */
// @ts-ignore: decorator
@inline export function highNibbles(v: v128): v128 {
  return v128.and(i16x8.shr_u(v, 4), u8const(U8_15));
}

/** Lanes 0..3 / 4..7 / 8..11 / 12..15 of an i8x16 as f32x4 (exact). */
// @ts-ignore: decorator
@inline export function i8x16QuarterToF32x4(v: v128, quarter: i32): v128 {
  const half = quarter < 2 ? i16x8.extend_low_i8x16_s(v) : i16x8.extend_high_i8x16_s(v);
  return f32x4.convert_i32x4_s((quarter & 1) == 0 ? i32x4.extend_low_i16x8_s(half) : i32x4.extend_high_i16x8_s(half));
}

/**
 * The values of quarter `quarter` (lanes 4·quarter .. 4·quarter + 3) of 16 int8 quants: q × d, then + m where withMin
 * (q4_1, q5_1; m is not read otherwise). The value formula of every 32-value block format, d and m splatted.
 */
// @ts-ignore: decorator
@inline export function quantValues4(q: v128, quarter: i32, d: v128, m: v128, withMin: bool): v128 {
  const v = f32x4.mul(i8x16QuarterToF32x4(q, quarter), d);
  return withMin ? f32x4.add(v, m) : v;
}

/** The 16 values of q at out (accumulate false) or out + w × them (true): (16) f32 at out. */
// @ts-ignore: decorator
@inline function storeQuants16(out: usize, q: v128, d: v128, m: v128, withMin: bool, w: v128, accumulate: bool): void {
  const v0 = quantValues4(q, 0, d, m, withMin);
  const v1 = quantValues4(q, 1, d, m, withMin);
  const v2 = quantValues4(q, 2, d, m, withMin);
  const v3 = quantValues4(q, 3, d, m, withMin);
  v128.store(out, accumulate ? f32x4.add(v128.load(out), f32x4.mul(w, v0)) : v0);
  v128.store(out, accumulate ? f32x4.add(v128.load(out, 16), f32x4.mul(w, v1)) : v1, 16);
  v128.store(out, accumulate ? f32x4.add(v128.load(out, 32), f32x4.mul(w, v2)) : v2, 32);
  v128.store(out, accumulate ? f32x4.add(v128.load(out, 48), f32x4.mul(w, v3)) : v3, 48);
}

/** out[j] = q[j] × d for the 16 int8 quants q of half a 32-value block: every block format's decode. */
// @ts-ignore: decorator
@inline export function dequantQuants16(out: usize, q: v128, d: v128): void {
  storeQuants16(out, q, d, d, false, d, false);
}

/** dequantQuants16 for the formats with a block minimum (q4_1, q5_1): out[j] = q[j] × d + m. */
// @ts-ignore: decorator
@inline export function dequantQuants16Min(out: usize, q: v128, d: v128, m: v128): void {
  storeQuants16(out, q, d, m, true, d, false);
}

/**
 * out[j] += w × (q[j] × d) for the 16 int8 quants q of half a 32-value block: the V accumulation (axpy) of every block
 * format. Each element on its own: d·q rounded, then w times it, then added.
 */
// @ts-ignore: decorator
@inline export function axpyQuants16(out: usize, q: v128, d: v128, w: v128): void {
  storeQuants16(out, q, d, d, false, w, true);
}

/** axpyQuants16 for the formats with a block minimum (q4_1, q5_1): out[j] += w × (q[j] × d + m). */
// @ts-ignore: decorator
@inline export function axpyQuants16Min(out: usize, q: v128, d: v128, m: v128, w: v128): void {
  storeQuants16(out, q, d, m, true, w, true);
}

/** C's roundf on four lanes: truncate, then step one away from zero when the dropped fraction is >= 0.5 (exact). */
// @ts-ignore: decorator
@inline export function roundHalfAwayF32x4(x: v128): v128 {
  const whole = f32x4.trunc(x);
  const fraction = f32x4.abs(f32x4.sub(x, whole));
  const signedOne = v128.or(v128.and(x, i32x4.splat(0x80000000)), f32x4.splat(1.0));
  return f32x4.add(whole, v128.and(signedOne, f32x4.ge(fraction, f32x4.splat(0.5))));
}

/**
 * Largest |x| over the 32 floats at src, found among the |x| bit patterns as i32 (sign bit cleared): for floats that
 * are not NaN the order of those integers is the order of the values, so this is the largest |x| exactly, in one
 * integer max a vector instead of f32x4.max's NaN-propagating sequence (about seven instructions on x64). A NaN
 * input (quantized formats do not define them) gives a NaN with its sign cleared.
 */
// @ts-ignore: decorator
@inline export function absMax32(src: usize): f32 {
  const magnitude = i32x4.splat(0x7fffffff);
  let m = v128.and(v128.load(src), magnitude); // (4) i32: |x| bits
  for (let k: usize = 16; k < 128; k += 16) m = i32x4.max_s(m, v128.and(v128.load(src + k), magnitude));
  m = i32x4.max_s(m, i32x4.shuffle(m, m, 2, 3, 0, 1));
  m = i32x4.max_s(m, i32x4.shuffle(m, m, 1, 0, 3, 2));
  return reinterpret<f32>(i32x4.extract_lane(m, 0));
}

/**
 * Whole-number f32 lanes (roundHalfAwayF32x4's) to i32 as i32x4.trunc_sat_f32x4_s gives them once narrowed to int8:
 * exact for |r| <= 2^22 (r + 1.5 × 2^23 holds r in its low mantissa bits); +inf and −inf give a large positive and a
 * large negative i32 (so they saturate to 127 and −128 as trunc_sat's do), NaN lanes 0. Two operations and a mask
 * against trunc_sat's seven instructions on x64. Only for quants (|x × id| <= 127 plus rounding, or ±inf / NaN when
 * 1 / d overflows) that are narrowed to int8 afterwards: other finite values beyond 2^22 may land on the wrong side.
 */
// @ts-ignore: decorator
@inline export function wholeToI32x4ForI8(r: v128): v128 {
  const magic = f32x4.splat(12582912.0); // 1.5 × 2^23
  const bits = i32x4.sub(f32x4.add(r, magic), magic); // (4) i32: r for |r| <= 2^22
  return v128.and(bits, f32x4.eq(r, r));
}

/**
 * A block's rounded quants as i32: trunc_sat where their sum is kept (q8_1's s, sBits != 0: the i32 of a degenerate
 * block, whose 1 / d is infinite, enters it), else the cheaper conversion that narrows to the same int8.
 */
// @ts-ignore: decorator
@inline function quantToI32x4(r: v128, sBits: usize): v128 {
  return sBits != 0 ? i32x4.trunc_sat_f32x4_s(r) : wholeToI32x4ForI8(r);
}

/**
 * Quantize 32 floats at src into 32 int8 at qs as q8_0 / q8_1 do (q = roundf(x × id), id = 1 / (amax / 127)).
 * Stores fp16(d) at dBits and, when sBits is not 0, q8_1's s = fp16(float(Σ q) × d) at sBits.
 */
// @ts-ignore: decorator
@inline export function quantizeQ8Block(src: usize, dBits: usize, qs: usize, sBits: usize): void {
  const amax = absMax32(src);
  const d: f32 = amax / 127;
  const id: f32 = d != 0 ? <f32>1 / d : 0;
  store<u16>(dBits, <u16>f32ToF16(d));
  const scale = f32x4.splat(id);
  let sum = i32x4.splat(0);
  for (let half: usize = 0; half < 2; half++) {
    const p = src + half * 64;
    const a = quantToI32x4(roundHalfAwayF32x4(f32x4.mul(v128.load(p), scale)), sBits);
    const b = quantToI32x4(roundHalfAwayF32x4(f32x4.mul(v128.load(p, 16), scale)), sBits);
    const c = quantToI32x4(roundHalfAwayF32x4(f32x4.mul(v128.load(p, 32), scale)), sBits);
    const e = quantToI32x4(roundHalfAwayF32x4(f32x4.mul(v128.load(p, 48), scale)), sBits);
    sum = i32x4.add(sum, i32x4.add(i32x4.add(a, b), i32x4.add(c, e)));
    v128.store(qs + half * 16, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, b), i16x8.narrow_i32x4_s(c, e)));
  }
  if (sBits != 0) store<u16>(sBits, <u16>f32ToF16(<f32>hsumI32x4(sum) * d));
}

/** The fp16 at p as f32. */
// @ts-ignore: decorator
@inline export function loadF16(p: usize): f32 {
  return f16ToF32(<u32>load<u16>(p));
}

/**
 * The u8 constant at `value` (an offset into the u8 table: U8_16, U8_4) in byte lane j (0..15) where bit
 * 8·firstByte + j of qh is set, 0 elsewhere: one bit plane of 16 quants.
 */
// @ts-ignore: decorator
@inline export function bitPlane(qh: u32, firstByte: i32, value: usize): v128 {
  const spread = lookup16(i32x4.splat(qh), vconst(firstByte == 0 ? 224 : 240));
  const bit = vconst(256);
  return v128.and(i8x16.eq(v128.and(spread, bit), bit), u8const(value));
}

/** 0x10 in byte lane j (0..15) where bit 8·firstByte + j of qh is set: the fifth bits of q5_0 / q5_1 quants. */
// @ts-ignore: decorator
@inline export function fifthBits(qh: u32, firstByte: i32): v128 {
  return bitPlane(qh, firstByte, U8_16);
}

// ---- row-tile helpers shared by the matvec / matmul kernels ---------------------------------------------------

/** [Σ lanes of a, Σ lanes of b, Σ lanes of c, Σ lanes of d] (integer sums: exact in any order). */
// @ts-ignore: decorator
@inline export function sum4I32x4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(i32x4.shuffle(a, b, 0, 1, 4, 5), i32x4.shuffle(a, b, 2, 3, 6, 7)); // [a0+a2, a1+a3, b0+b2, b1+b3]
  const cd = i32x4.add(i32x4.shuffle(c, d, 0, 1, 4, 5), i32x4.shuffle(c, d, 2, 3, 6, 7));
  return i32x4.add(i32x4.shuffle(ab, cd, 0, 2, 4, 6), i32x4.shuffle(ab, cd, 1, 3, 5, 7));
}

// What storeTransposedI32x4 makes of each transposed vector before storing it: compile-time constants.
/** The values as they are (every plain layout; the relaxed q8_0-partner layout's signed rows, for tile1x1Signed). */
export const AS_VALUES: i32 = 0;
/** Relaxed q8_0-partner rows (matmul-wide.ts): x, and −x 128 bytes on. */
export const AS_PARTNER: i32 = 1;
/** Relaxed q8_0-partner weight rows (matmul-wide.ts): |w|, and the sign masks 128 bytes on. */
export const AS_WEIGHTS: i32 = 2;

/**
 * Store the vector v at dst as `kind` says. Returns |v| for AS_WEIGHTS (whose top bit is set only where v is −128),
 * else 0.
 */
// @ts-ignore: decorator
@inline function storeAs(kind: i32, dst: usize, v: v128): v128 {
  const zero = i32x4.splat(0);
  if (kind == AS_VALUES) {
    v128.store(dst, v);
    return zero;
  }
  if (kind == AS_PARTNER) {
    v128.store(dst, v);
    v128.store(dst, i8x16.neg(v), 128);
    return zero;
  }
  const magnitude = i8x16.abs(v);
  v128.store(dst, magnitude);
  v128.store(dst, i8x16.lt_s(v, zero), 128);
  return magnitude;
}

/**
 * The 4 × 4 transpose of the i32 lanes of rows a, b, c, d stored as four vectors at dst: vector m = [a_m, b_m, c_m,
 * d_m], each stored as `kind` says (storeAs; the wide layouts of matmul-wide.ts and matmul-wide-k.ts). Returns the OR
 * of storeAs's results.
 */
// @ts-ignore: decorator
@inline export function storeTransposedI32x4(kind: i32, dst: usize, a: v128, b: v128, c: v128, d: v128): v128 {
  const abLow = i32x4.shuffle(a, b, 0, 4, 1, 5); // [a0, b0, a1, b1]
  const cdLow = i32x4.shuffle(c, d, 0, 4, 1, 5);
  const abHigh = i32x4.shuffle(a, b, 2, 6, 3, 7); // [a2, b2, a3, b3]
  const cdHigh = i32x4.shuffle(c, d, 2, 6, 3, 7);
  const s0 = storeAs(kind, dst, i32x4.shuffle(abLow, cdLow, 0, 1, 4, 5));
  const s1 = storeAs(kind, dst + 16, i32x4.shuffle(abLow, cdLow, 2, 3, 6, 7));
  const s2 = storeAs(kind, dst + 32, i32x4.shuffle(abHigh, cdHigh, 0, 1, 4, 5));
  const s3 = storeAs(kind, dst + 48, i32x4.shuffle(abHigh, cdHigh, 2, 3, 6, 7));
  return v128.or(v128.or(s0, s1), v128.or(s2, s3));
}

/**
 * v128 constants of the matvec / matmul kernels, read from memory where used: V8 rebuilds a v128 immediate from
 * scalar moves on every loop iteration, while a load from this table is one instruction (or a memory operand).
 */
const VECTOR_CONSTANTS: usize = memory.data<u32>([
  0x7fff, 0x7fff, 0x7fff, 0x7fff, // 0: fp16 magnitude
  0x7c00, 0x7c00, 0x7c00, 0x7c00, // 16: fp16 exponent
  0x7f800000, 0x7f800000, 0x7f800000, 0x7f800000, // 32: f32 exponent (inf / NaN)
  0x77800000, 0x77800000, 0x77800000, 0x77800000, // 48: 2^112
  0x8000, 0x8000, 0x8000, 0x8000, // 64: fp16 sign
  0xffff, 0xffff, 0xffff, 0xffff, // 80: low half of each i32 lane
  0x00080008, 0x00080008, 0x00080008, 0x00080008, // 96: i16 8
  0x000f000f, 0x000f000f, 0x000f000f, 0x000f000f, // 112: i16 15
  0x00100010, 0x00100010, 0x00100010, 0x00100010, // 128: i16 16
  0x00020001, 0x00080004, 0x00200010, 0x00800040, // 144: i16 1, 2, 4, ..., 128
  0xbfad9881, 0xf6eaddcf, 0x26190d01, 0x71594535, // 160: ggml's kvalues_iq4nl as int8
  0xffffffff, 0, 0, 0, // 176: lane 0
  0xffffffff, 0xffffffff, 0, 0, // 192: lanes 0, 1
  0xffffffff, 0xffffffff, 0xffffffff, 0, // 208: lanes 0, 1, 2
  0x00000000, 0x00000000, 0x01010101, 0x01010101, // 224: bitPlane's byte of qh per lane, first byte 0
  0x02020202, 0x02020202, 0x03030303, 0x03030303, // 240: the same, first byte 2
  0x08040201, 0x80402010, 0x08040201, 0x80402010, // 256: bitPlane's bit per lane (1, 2, 4, ..., 128, twice)
  0x0f7fffff, 0x0f7fffff, 0x0f7fffff, 0x0f7fffff, // 272: the largest finite fp16 magnitude << 13
  0x38000000, 0x38000000, 0x38000000, 0x38000000, // 288: fp16 -> f32 exponent rebias, 112 << 23
  0x33800000, 0x33800000, 0x33800000, 0x33800000, // 304: 2^-24, the fp16 subnormal unit
  0x0400, 0x0400, 0x0400, 0x0400, // 320: the smallest normal fp16 magnitude
  0x7bff, 0x7bff, 0x7bff, 0x7bff, // 336: the largest finite fp16 magnitude
  0x8fffe000, 0x8fffe000, 0x8fffe000, 0x8fffe000, // 352: a sign-extended fp16 << 13: its sign, exponent and mantissa bits
], 16);

// @ts-ignore: decorator
@inline export function vconst(offset: usize): v128 {
  return v128.load(VECTOR_CONSTANTS + offset);
}

/**
 * fp16 bits (one per i32 lane, high halves zero) -> f32x4 by exponent rebias: (h & 0x7fff) << 13 read as f32,
 * times 2^112, is the exact value for normal and subnormal halves; exponent 31 (inf, NaN) gets all f32 exponent bits;
 * the sign is or'ed back. Equals f16ToF32 for all 65536 patterns. One multiply, but a subnormal half makes it a
 * subnormal f32 operand, which costs x64 cores a microcode assist (about a hundred cycles): where subnormal halves
 * are common (K-quant super-block scales), f16BitsToF32x4Subnormals.
 */
// @ts-ignore: decorator
@inline export function f16BitsToF32x4(h: v128): v128 {
  const magnitude = f32x4.mul(i32x4.shl(v128.and(h, vconst(0)), 13), vconst(48));
  const infNan = v128.and(i32x4.eq(v128.and(h, vconst(16)), vconst(16)), vconst(32));
  const sign = i32x4.shl(v128.and(h, vconst(64)), 16);
  return v128.or(v128.or(magnitude, infNan), sign);
}

/**
 * f16BitsToF32x4 of sign-extended halves (one per i32 lane, as v128.load16x4_s gives them): h << 13 keeps the sign in
 * bit 31, and one mask clears the sign's copies between it and the exponent, so the multiply by 2^112 carries the
 * sign; seven operations against ten. The same bits for all 65536 patterns.
 */
// @ts-ignore: decorator
@inline export function f16SignedBitsToF32x4(h: v128): v128 {
  const value = f32x4.mul(v128.and(i32x4.shl(h, 13), vconst(352)), vconst(48));
  const infNan = v128.and(i32x4.eq(v128.and(h, vconst(16)), vconst(16)), vconst(32));
  return v128.or(value, infNan);
}

/**
 * f16BitsToF32x4 with no subnormal f32 operand, f16ToF32's way in every lane: integer rebias for exponents 1..30,
 * mantissa × 2^-24 for exponent 0, all exponent bits or'ed in for 31, the sign or'ed back. Three operations more
 * than f16BitsToF32x4 on normal halves; on subnormal ones no assist (matvec_q4_K_x4 over super-blocks whose d is
 * subnormal: 1.8× faster). Equals f16ToF32 for all 65536 patterns.
 */
// @ts-ignore: decorator
@inline export function f16BitsToF32x4Subnormals(h: v128): v128 {
  const bits = v128.and(h, vconst(0)); // (4) i32: |h| bits
  const normal = i32x4.add(i32x4.shl(bits, 13), vconst(288)); // exponents 1..30 (31 completed by infNan)
  const subnormal = f32x4.mul(f32x4.convert_i32x4_s(bits), vconst(304)); // exponent 0: mantissa × 2^-24, exact
  const magnitude = selectLanes(subnormal, normal, i32x4.lt_s(bits, vconst(320)));
  const infNan = v128.and(i32x4.gt_s(bits, vconst(336)), vconst(32));
  return v128.or(v128.or(magnitude, infNan), i32x4.shl(v128.and(h, vconst(64)), 16));
}

/** The fp16 at p in all four lanes as f32x4. */
// @ts-ignore: decorator
@inline export function loadF16Splat(p: usize): v128 {
  return f16BitsToF32x4(v128.and(v128.load16_splat(p), vconst(80)));
}

/** The fp16 bits at a, b, c, d, zero-extended into the lanes of an i32x4 [a, b, c, d]. */
// @ts-ignore: decorator
@inline function loadHalvesX4(a: usize, b: usize, c: usize, d: usize): v128 {
  let h = v128.load16_lane(a, i32x4.splat(0), 0);
  h = v128.load16_lane(b, h, 2);
  h = v128.load16_lane(c, h, 4);
  return v128.load16_lane(d, h, 6);
}

/** The fp16 values at a, b, c, d as f32x4 [a, b, c, d]. */
// @ts-ignore: decorator
@inline export function loadF16x4(a: usize, b: usize, c: usize, d: usize): v128 {
  return f16BitsToF32x4(loadHalvesX4(a, b, c, d));
}

/** loadF16x4 through f16BitsToF32x4Subnormals: for fp16 values often subnormal (K-quant super-block scales). */
// @ts-ignore: decorator
@inline export function loadF16x4Subnormals(a: usize, b: usize, c: usize, d: usize): v128 {
  return f16BitsToF32x4Subnormals(loadHalvesX4(a, b, c, d));
}

/** Store the first `count` (1..4) lanes of v at p. */
// @ts-ignore: decorator
@inline export function storeLanesF32x4(p: usize, v: v128, count: i32): void {
  if (count == 4) {
    v128.store(p, v);
    return;
  }
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (count > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (count > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
}
