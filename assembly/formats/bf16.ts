// bf16 kernels: rows of bfloat16 (the top 16 bits of a float, ggml rounding); the dot partner is bf16.
import { bf16ToF32, f32ToBf16, f32x4ToBf16x4, hsumF32x4 } from "./common";
import { BF16, matmulFloats } from "./floatdot";

// @ts-ignore: decorator
@inline function bf16x8LowToF32x4(halves: v128): v128 {
  return i32x4.shl(i32x4.extend_low_i16x8_u(halves), 16);
}
// @ts-ignore: decorator
@inline function bf16x8HighToF32x4(halves: v128): v128 {
  return i32x4.shl(i32x4.extend_high_i16x8_u(halves), 16);
}

/** n floats at src -> n bf16 at dst, eight at a time, scalar tail. */
export function quantizeRow_bf16(src: usize, dst: usize, n: i32): void {
  const blocks = <usize>(n >> 3);
  for (let b: usize = 0; b < blocks; b++) {
    const lo = f32x4ToBf16x4(v128.load(src + b * 32));
    const hi = f32x4ToBf16x4(v128.load(src + b * 32, 16));
    v128.store(dst + b * 16, i16x8.narrow_i32x4_u(lo, hi));
  }
  for (let i = <usize>(n & ~7); i < <usize>n; i++) store<u16>(dst + (i << 1), <u16>f32ToBf16(load<f32>(src + (i << 2))));
}

export function dequantizeRow_bf16(src: usize, dst: usize, n: i32): void {
  const blocks = <usize>(n >> 3);
  for (let b: usize = 0; b < blocks; b++) {
    const halves = v128.load(src + b * 16);
    v128.store(dst + b * 32, bf16x8LowToF32x4(halves));
    v128.store(dst + b * 32, bf16x8HighToF32x4(halves), 16);
  }
  for (let i = <usize>(n & ~7); i < <usize>n; i++) store<f32>(dst + (i << 2), bf16ToF32(<u32>load<u16>(src + (i << 1))));
}

/** Σ row[i] × x[i] over n bf16 pairs, widened to f32 (f32 products, f32x4 accumulators). */
export function dot_bf16(row: usize, x: usize, n: i32): f32 {
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  const blocks = <usize>(n >> 3);
  for (let b: usize = 0; b < blocks; b++) {
    const a = v128.load(row + b * 16);
    const c = v128.load(x + b * 16);
    acc0 = f32x4.add(acc0, f32x4.mul(bf16x8LowToF32x4(a), bf16x8LowToF32x4(c)));
    acc1 = f32x4.add(acc1, f32x4.mul(bf16x8HighToF32x4(a), bf16x8HighToF32x4(c)));
  }
  let sum = hsumF32x4(f32x4.add(acc0, acc1));
  for (let i = <usize>(n & ~7); i < <usize>n; i++) {
    sum += bf16ToF32(<u32>load<u16>(row + (i << 1))) * bf16ToF32(<u32>load<u16>(x + (i << 1)));
  }
  return sum;
}

/** out[i] += w × row[i] for n bf16 values. */
export function axpy_bf16(out: usize, w: f32, row: usize, n: i32): void {
  const weight = f32x4.splat(w);
  const blocks = <usize>(n >> 3);
  for (let b: usize = 0; b < blocks; b++) {
    const halves = v128.load(row + b * 16);
    const o = out + b * 32;
    v128.store(o, f32x4.add(v128.load(o), f32x4.mul(weight, bf16x8LowToF32x4(halves))));
    v128.store(o, f32x4.add(v128.load(o, 16), f32x4.mul(weight, bf16x8HighToF32x4(halves))), 16);
  }
  for (let i = <usize>(n & ~7); i < <usize>n; i++) {
    const o = out + (i << 2);
    store<f32>(o, load<f32>(o) + w * bf16ToF32(<u32>load<u16>(row + (i << 1))));
  }
}

/**
 * out[t][r] = dot(W[r], X[t]) for r in [rowStart, rowEnd), t in [0, nTokens): W is (rows, cols) bf16, X is
 * (nTokens, xStride bytes) bf16, out is (nTokens, outStride bytes) f32. Summation order: floatdot.ts.
 */
export function matmul_bf16(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  matmulFloats(BF16, w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride);
}

/** out[r] = dot(W[r], x) for r in [rowStart, rowEnd): matmul_bf16 with one token, bit for bit. */
export function matvec_bf16(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  matmulFloats(BF16, w, x, out, rowStart, rowEnd, cols, 1, 0, 0);
}
