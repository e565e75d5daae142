// Row kernels of the float formats (f32, f16, bf16), one generic shape for the three (a format id, a compile-time
// constant at every call, picks the element conversion): quantize / dequantize rows, the row dot and axpy of
// attention's fallback path, and the row dots behind the matvec_<fmt> / matmul_<fmt> products (matmul-rows.ts; not
// re-exported by index.ts).
// The order of a row's dot, whatever the tiling: eight values a step into two f32x4 accumulators (values 0-3 and 4-7
// of each step, products rounded to f32 then added), then hsum(acc0 + acc1), then the cols % 8 tail values added one
// by one. The matmul (matmul-rows.ts) runs it per (row, token) however its passes group rows and tokens, so a batched
// run and a token-by-token run give the same bits.
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

/** Shapes of rowDotsFloats's passes: rows × tokens. */
export const DOTS_4X1: i32 = 0;
export const DOTS_2X2: i32 = 1;
export const DOTS_1X2: i32 = 2;

/**
 * Several row dots a pass, each in rowDotFloats's order, each step's values decoded once for all of them; `shape` (a
 * compile-time constant) picks the pairs, dot (row r, token t) stored at o + 4r + t·os:
 *   DOTS_4X1:  rows w + r·rowBytes (r = 0..3) with the row at x (four dots, a..d)
 *   DOTS_2X2:  rows w, w + rowBytes with the rows at x, x + xs (four dots: a = (0, 0), b = (0, 1), c = (1, 0), d = (1, 1))
 *   DOTS_1X2:  the row at w with the rows at x, x + xs (two dots, a and b; rowBytes not read)
 */
// @ts-ignore: decorator
@inline export function rowDotsFloats(fmt: i32, shape: i32, w: usize, rowBytes: usize, x: usize, xs: usize, n: i32, o: usize, os: usize): void {
  const E = elementBytes(fmt);
  const H: usize = 4 * E; // bytes to a step's values 4..7
  const rows4 = shape == DOTS_4X1;
  const four = shape != DOTS_1X2;
  const rowC: usize = rows4 ? 2 * rowBytes : rowBytes; // dot c's row
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
    // inputs: x0 for every dot (DOTS_4X1), or x0 for dots a, c and x1 for b, d
    const x0l = load4(fmt, q);
    const x0h = load4(fmt, q + H);
    const x1l = rows4 ? x0l : load4(fmt, q + xs);
    const x1h = rows4 ? x0h : load4(fmt, q + xs + H);
    // weights: rows 0..3 for dots a..d (DOTS_4X1), or row 0 for a, b and row 1 for c, d
    const wal = load4(fmt, p);
    const wah = load4(fmt, p + H);
    a0 = f32x4.add(a0, f32x4.mul(wal, x0l));
    a1 = f32x4.add(a1, f32x4.mul(wah, x0h));
    const wbl = rows4 ? load4(fmt, p + rowBytes) : wal;
    const wbh = rows4 ? load4(fmt, p + rowBytes + H) : wah;
    b0 = f32x4.add(b0, f32x4.mul(wbl, x1l));
    b1 = f32x4.add(b1, f32x4.mul(wbh, x1h));
    if (four) {
      const wcl = load4(fmt, p + rowC);
      const wch = load4(fmt, p + rowC + H);
      c0 = f32x4.add(c0, f32x4.mul(wcl, x0l));
      c1 = f32x4.add(c1, f32x4.mul(wch, x0h));
      const wdl = rows4 ? load4(fmt, p + 3 * rowBytes) : wcl;
      const wdh = rows4 ? load4(fmt, p + 3 * rowBytes + H) : wch;
      d0 = f32x4.add(d0, f32x4.mul(wdl, x1l));
      d1 = f32x4.add(d1, f32x4.mul(wdh, x1h));
    }
    p += 8 * E;
    q += 8 * E;
  }
  let sa = hsumF32x4(f32x4.add(a0, a1));
  let sb = hsumF32x4(f32x4.add(b0, b1));
  let sc = hsumF32x4(f32x4.add(c0, c1));
  let sd = hsumF32x4(f32x4.add(d0, d1));
  const end = w + <usize>n * E;
  while (p < end) {
    const x0 = load1(fmt, q);
    const x1 = rows4 ? x0 : load1(fmt, q + xs);
    const wa = load1(fmt, p);
    const wb = rows4 ? load1(fmt, p + rowBytes) : wa;
    sa += wa * x0;
    sb += wb * x1;
    if (four) {
      const wc = load1(fmt, p + rowC);
      const wd = rows4 ? load1(fmt, p + 3 * rowBytes) : wc;
      sc += wc * x0;
      sd += wd * x1;
    }
    p += E;
    q += E;
  }
  store<f32>(o, sa);
  store<f32>(rows4 ? o + 4 : o + os, sb);
  if (four) {
    store<f32>(rows4 ? o + 8 : o + 4, sc);
    store<f32>(rows4 ? o + 12 : o + os + 4, sd);
  }
}
