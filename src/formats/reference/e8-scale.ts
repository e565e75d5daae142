/**
 * The one-byte block scale of kvsplit's "_e8" codebook formats: a logarithmic code, 8 steps per octave.
 *   e = 0        → 0 (an all-zero block)
 *   e = 1 .. 255 → 2^((e − 160) / 8) = 2^floor((e − 160) / 8) × E8_FRACTIONS[(e − 160) mod 8]
 * so scales from 2^-19.9 (a block's largest |x| about 1.4e-4) to 2^11.9 (about 4.8e5) in steps of 9.05%. The
 * fractions are the f32 values of 2^(j/8), given as bit patterns so that every implementation decodes the same bits
 * (the product of a power of two and a fraction is exact).
 * e8Below gives the largest code whose scale is at most d (code 0 standing for 0), from d's f32 exponent and mantissa
 * (exact comparisons, so the same everywhere); above the largest: 255; NaN or ≤ 0: 0. The quantizers (codebook.ts)
 * pick between it and the next code by the block's squared error.
 */
import { f32Bits, f32FromBits } from "./scalar.js";

export const E8_BIAS = 160;
/** f32 bit patterns of 2^(j/8), j = 0..7. */
export const E8_FRACTION_BITS: readonly number[] = [0x3f800000, 0x3f8b95c2, 0x3f9837f0, 0x3fa5fed7, 0x3fb504f3, 0x3fc5672a, 0x3fd744fd, 0x3feac0c7];
const FRACTIONS = E8_FRACTION_BITS.map(f32FromBits);

/** The scale a code stands for (an f32 value). */
export function e8Value(e: number): number {
  if (e === 0) return 0;
  const k = e - E8_BIAS;
  return 2 ** Math.floor(k / 8) * FRACTIONS[k & 7]!;
}

/** The largest code whose scale is at most `d` (an f32 value; code 0 stands for 0, so NaN or d ≤ 0 give 0); at most 255. */
export function e8Below(d: number): number {
  if (!(d > 0)) return 0;
  const bits = f32Bits(d);
  const exponent = (bits >>> 23) - 127; // a subnormal d gives a code far below 1: 0 below
  const mantissa = f32FromBits((bits & 0x7fffff) | 0x3f800000); // d / 2^exponent in [1, 2)
  let j = 7;
  while (FRACTIONS[j]! > mantissa) j--;
  const e = E8_BIAS + 8 * exponent + j;
  return e < 1 ? 0 : Math.min(255, e);
}
