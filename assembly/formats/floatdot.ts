// Row kernels of the float formats (f32, f16, bf16), one generic shape for the three (a format id, a compile-time
// constant at every call, picks the element conversion): quantize / dequantize rows, the row dot and axpy of
// attention's fallback path, and the row dots behind the matvec_<fmt> / matmul_<fmt> products (matmul-rows.ts; not
// re-exported by index.ts).
// The order of a row's dot, whatever the tiling: eight values a step into two f32x4 accumulators (values 0-3 and 4-7
// of each step, products rounded to f32 then added), then hsum(acc0 + acc1), then the cols % 8 tail values added one
// by one. matmul runs it per (row, token), two tokens per pass sharing the decoded weights, so a batched run and a
// token-by-token run give the same bits.
import { bf16ToF32, f16SignedBitsToF32x4, f16ToF32, f32ToBf16, f32ToF16, f32x4ToBf16x4, f32x4ToF16x4, hsumF32x4 } from "./common";

export const F32: i32 = 10;
export const F16: i32 = 11;
export const BF16: i32 = 12;

// @ts-ignore: decorator
@inline export function elementBytes(fmt: i32): usize {
  return fmt == F32 ? 4 : 2;
}

/** The four values at p as f32x4 (f16 by exponent rebias, bf16 by a shift). */
// @ts-ignore: decorator
@inline function load4(fmt: i32, p: usize): v128 {
  if (fmt == F32) return v128.load(p);
  if (fmt == F16) return f16SignedBitsToF32x4(v128.load16x4_s(p));
  return i32x4.shl(v128.load16x4_u(p), 16);
}

// @ts-ignore: decorator
@inline function load1(fmt: i32, p: usize): f32 {
  if (fmt == F32) return load<f32>(p);
  if (fmt == F16) return f16ToF32(<u32>load<u16>(p));
  return bf16ToF32(<u32>load<u16>(p));
}

/** Dot of the rows at w and x (n values each). */
// @ts-ignore: decorator
@inline export function rowDotFloats(fmt: i32, w: usize, x: usize, n: i32): f32 {
  const E = elementBytes(fmt);
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let p = w;
  let q = x;
  const stepsEnd = w + <usize>(n >> 3) * 8 * E;
  while (p < stepsEnd) {
    acc0 = f32x4.add(acc0, f32x4.mul(load4(fmt, p), load4(fmt, q)));
    acc1 = f32x4.add(acc1, f32x4.mul(load4(fmt, p + 4 * E), load4(fmt, q + 4 * E)));
    p += 8 * E;
    q += 8 * E;
  }
  let sum = hsumF32x4(f32x4.add(acc0, acc1));
  const end = w + <usize>n * E;
  while (p < end) {
    sum += load1(fmt, p) * load1(fmt, q);
    p += E;
    q += E;
  }
  return sum;
}

/** n floats at src -> n values of the format at dst (f16 and bf16 with ggml's rounding: common.ts), eight a step. */
// @ts-ignore: decorator
@inline export function quantizeRowFloats(fmt: i32, src: usize, dst: usize, n: i32): void {
  if (fmt == F32) {
    memory.copy(dst, src, <usize>n << 2);
    return;
  }
  const steps = <usize>(n >> 3);
  for (let b: usize = 0; b < steps; b++) {
    const lo = v128.load(src + b * 32);
    const hi = v128.load(src + b * 32, 16);
    const halves = fmt == F16
      ? i16x8.narrow_i32x4_u(f32x4ToF16x4(lo), f32x4ToF16x4(hi))
      : i16x8.narrow_i32x4_u(f32x4ToBf16x4(lo), f32x4ToBf16x4(hi));
    v128.store(dst + b * 16, halves);
  }
  for (let i = <usize>(n & ~7); i < <usize>n; i++) {
    const x = load<f32>(src + (i << 2));
    store<u16>(dst + (i << 1), <u16>(fmt == F16 ? f32ToF16(x) : f32ToBf16(x)));
  }
}

/** n values of the format at src -> n f32 at dst, four a step. */
// @ts-ignore: decorator
@inline export function dequantizeRowFloats(fmt: i32, src: usize, dst: usize, n: i32): void {
  if (fmt == F32) {
    memory.copy(dst, src, <usize>n << 2);
    return;
  }
  const E = elementBytes(fmt);
  const steps = <usize>(n >> 2);
  for (let b: usize = 0; b < steps; b++) v128.store(dst + (b << 4), load4(fmt, src + b * 4 * E));
  for (let i = <usize>(n & ~3); i < <usize>n; i++) store<f32>(dst + (i << 2), load1(fmt, src + i * E));
}

/** out[i] += w × row[i] for n values of the format (each element on its own: the same bits in any step). */
// @ts-ignore: decorator
@inline export function axpyFloats(fmt: i32, out: usize, w: f32, row: usize, n: i32): void {
  const E = elementBytes(fmt);
  const weight = f32x4.splat(w);
  const steps = <usize>(n >> 2);
  for (let b: usize = 0; b < steps; b++) {
    const o = out + (b << 4);
    v128.store(o, f32x4.add(v128.load(o), f32x4.mul(weight, load4(fmt, row + b * 4 * E))));
  }
  for (let i = <usize>(n & ~3); i < <usize>n; i++) {
    const o = out + (i << 2);
    store<f32>(o, load<f32>(o) + w * load1(fmt, row + i * E));
  }
}

/**
 * rowDotFloats of the four rows at w, w + rowBytes, w + 2·rowBytes, w + 3·rowBytes with the row at x (its values
 * decoded once a step for the four); results stored at o, o + 4, o + 8, o + 12.
 */
// @ts-ignore: decorator
@inline export function rowDotFloats4(fmt: i32, w: usize, rowBytes: usize, x: usize, n: i32, o: usize): void {
  const E = elementBytes(fmt);
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let b0 = f32x4.splat(0);
  let b1 = f32x4.splat(0);
  let c0 = f32x4.splat(0);
  let c1 = f32x4.splat(0);
  let d0 = f32x4.splat(0);
  let d1 = f32x4.splat(0);
  let p = w;
  let q = x;
  const stepsEnd = w + <usize>(n >> 3) * 8 * E;
  while (p < stepsEnd) {
    const lo = load4(fmt, q);
    const hi = load4(fmt, q + 4 * E);
    a0 = f32x4.add(a0, f32x4.mul(load4(fmt, p), lo));
    a1 = f32x4.add(a1, f32x4.mul(load4(fmt, p + 4 * E), hi));
    b0 = f32x4.add(b0, f32x4.mul(load4(fmt, p + rowBytes), lo));
    b1 = f32x4.add(b1, f32x4.mul(load4(fmt, p + rowBytes + 4 * E), hi));
    c0 = f32x4.add(c0, f32x4.mul(load4(fmt, p + 2 * rowBytes), lo));
    c1 = f32x4.add(c1, f32x4.mul(load4(fmt, p + 2 * rowBytes + 4 * E), hi));
    d0 = f32x4.add(d0, f32x4.mul(load4(fmt, p + 3 * rowBytes), lo));
    d1 = f32x4.add(d1, f32x4.mul(load4(fmt, p + 3 * rowBytes + 4 * E), hi));
    p += 8 * E;
    q += 8 * E;
  }
  let sa = hsumF32x4(f32x4.add(a0, a1));
  let sb = hsumF32x4(f32x4.add(b0, b1));
  let sc = hsumF32x4(f32x4.add(c0, c1));
  let sd = hsumF32x4(f32x4.add(d0, d1));
  const end = w + <usize>n * E;
  while (p < end) {
    const v = load1(fmt, q);
    sa += load1(fmt, p) * v;
    sb += load1(fmt, p + rowBytes) * v;
    sc += load1(fmt, p + 2 * rowBytes) * v;
    sd += load1(fmt, p + 3 * rowBytes) * v;
    p += E;
    q += E;
  }
  store<f32>(o, sa);
  store<f32>(o, sb, 4);
  store<f32>(o, sc, 8);
  store<f32>(o, sd, 12);
}

/**
 * rowDotFloats of the rows at w and w + rowBytes with the rows at xa and xb (each step's values decoded once for the
 * four dots); row 0's results stored at oa (xa), oa + os (xb), row 1's at oa + 4, oa + os + 4.
 */
// @ts-ignore: decorator
@inline export function rowDotFloats2x2(fmt: i32, w: usize, rowBytes: usize, xa: usize, xb: usize, n: i32, oa: usize, os: usize): void {
  const E = elementBytes(fmt);
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let b0 = f32x4.splat(0);
  let b1 = f32x4.splat(0);
  let c0 = f32x4.splat(0);
  let c1 = f32x4.splat(0);
  let d0 = f32x4.splat(0);
  let d1 = f32x4.splat(0);
  let p = w;
  let qa = xa;
  let qb = xb;
  const stepsEnd = w + <usize>(n >> 3) * 8 * E;
  while (p < stepsEnd) {
    const lo = load4(fmt, p);
    const hi = load4(fmt, p + 4 * E);
    const xLo = load4(fmt, qa);
    const xHi = load4(fmt, qa + 4 * E);
    const yLo = load4(fmt, qb);
    const yHi = load4(fmt, qb + 4 * E);
    a0 = f32x4.add(a0, f32x4.mul(lo, xLo));
    a1 = f32x4.add(a1, f32x4.mul(hi, xHi));
    b0 = f32x4.add(b0, f32x4.mul(lo, yLo));
    b1 = f32x4.add(b1, f32x4.mul(hi, yHi));
    const lo2 = load4(fmt, p + rowBytes);
    const hi2 = load4(fmt, p + rowBytes + 4 * E);
    c0 = f32x4.add(c0, f32x4.mul(lo2, xLo));
    c1 = f32x4.add(c1, f32x4.mul(hi2, xHi));
    d0 = f32x4.add(d0, f32x4.mul(lo2, yLo));
    d1 = f32x4.add(d1, f32x4.mul(hi2, yHi));
    p += 8 * E;
    qa += 8 * E;
    qb += 8 * E;
  }
  let sa = hsumF32x4(f32x4.add(a0, a1));
  let sb = hsumF32x4(f32x4.add(b0, b1));
  let sc = hsumF32x4(f32x4.add(c0, c1));
  let sd = hsumF32x4(f32x4.add(d0, d1));
  const end = w + <usize>n * E;
  while (p < end) {
    const v = load1(fmt, p);
    const v2 = load1(fmt, p + rowBytes);
    const x = load1(fmt, qa);
    const y = load1(fmt, qb);
    sa += v * x;
    sb += v * y;
    sc += v2 * x;
    sd += v2 * y;
    p += E;
    qa += E;
    qb += E;
  }
  store<f32>(oa, sa);
  store<f32>(oa + os, sb);
  store<f32>(oa, sc, 4);
  store<f32>(oa + os, sd, 4);
}

/** rowDotFloats of the row at w with the rows at xa and xb (weights decoded once); results stored at oa, ob. */
// @ts-ignore: decorator
@inline export function rowDotFloats2(fmt: i32, w: usize, xa: usize, xb: usize, n: i32, oa: usize, ob: usize): void {
  const E = elementBytes(fmt);
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let b0 = f32x4.splat(0);
  let b1 = f32x4.splat(0);
  let p = w;
  let qa = xa;
  let qb = xb;
  const stepsEnd = w + <usize>(n >> 3) * 8 * E;
  while (p < stepsEnd) {
    const lo = load4(fmt, p);
    const hi = load4(fmt, p + 4 * E);
    a0 = f32x4.add(a0, f32x4.mul(lo, load4(fmt, qa)));
    a1 = f32x4.add(a1, f32x4.mul(hi, load4(fmt, qa + 4 * E)));
    b0 = f32x4.add(b0, f32x4.mul(lo, load4(fmt, qb)));
    b1 = f32x4.add(b1, f32x4.mul(hi, load4(fmt, qb + 4 * E)));
    p += 8 * E;
    qa += 8 * E;
    qb += 8 * E;
  }
  let sa = hsumF32x4(f32x4.add(a0, a1));
  let sb = hsumF32x4(f32x4.add(b0, b1));
  const end = w + <usize>n * E;
  while (p < end) {
    const v = load1(fmt, p);
    sa += v * load1(fmt, qa);
    sb += v * load1(fmt, qb);
    p += E;
    qa += E;
    qb += E;
  }
  store<f32>(oa, sa);
  store<f32>(ob, sb);
}
