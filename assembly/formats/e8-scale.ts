// The one-byte logarithmic block scale of the _e8 codebook formats (src/formats/reference/e8-scale.ts is the scalar
// reference and documents the code): e = 0 → 0, else 2^((e − 160) / 8) = 2^floor((e − 160) / 8) × FRACTIONS[(e − 160) & 7].

const E8_BIAS: i32 = 160;
/** 2^(j/8) as f32, j = 0..7 (the reference's bit patterns). */
const FRACTIONS: usize = memory.data<u32>([0x3f800000, 0x3f8b95c2, 0x3f9837f0, 0x3fa5fed7, 0x3fb504f3, 0x3fc5672a, 0x3fd744fd, 0x3feac0c7]);

/** 2^p as f32 for p in -126..127. */
// @ts-ignore: decorator
@inline function pow2(p: i32): f32 {
  return reinterpret<f32>(<u32>(p + 127) << 23);
}

// @ts-ignore: decorator
@inline function fraction(j: i32): f32 {
  return load<f32>(FRACTIONS + (<usize>j << 2));
}

/** The scale code e stands for. */
// @ts-ignore: decorator
@inline export function e8Value(e: u32): f32 {
  if (e == 0) return 0;
  const k = <i32>e - E8_BIAS;
  return pow2(k >> 3) * fraction(k & 7);
}

/** The largest code whose scale is at most d (code 0 standing for 0: NaN or d ≤ 0 give 0), at most 255 (the reference's e8Below). */
// @ts-ignore: decorator
@inline export function e8Below(d: f32): u32 {
  if (!(d > 0)) return 0;
  const bits = reinterpret<u32>(d);
  const exponent = <i32>(bits >> 23) - 127;
  if (exponent < -20) return 0; // below the smallest code (2^-19.875), subnormals too
  if (exponent > 11) return 255; // at or above 2^12 (inf too): the largest code is below
  const mantissa = reinterpret<f32>((bits & 0x7fffff) | 0x3f800000); // d / 2^exponent in [1, 2)
  let j = 7;
  while (fraction(j) > mantissa) j--;
  const e = E8_BIAS + 8 * exponent + j;
  return <u32>(e < 1 ? 0 : min(255, e));
}
