// f16 kernels: rows of IEEE half floats (ggml rounding, see common.ts); the dot partner is f16.
import { f16ToF32, f16x8HighToF32x4, f16x8LowToF32x4, f32ToF16, f32x4ToF16x4, hsumF32x4 } from "./common";
import { F16, matmulFloats } from "./floatdot";

/** n floats at src -> n f16 at dst, eight at a time, scalar tail. */
export function quantizeRow_f16(src: usize, dst: usize, n: i32): void {
  const blocks = <usize>(n >> 3);
  for (let b: usize = 0; b < blocks; b++) {
    const lo = f32x4ToF16x4(v128.load(src + b * 32));
    const hi = f32x4ToF16x4(v128.load(src + b * 32, 16));
    v128.store(dst + b * 16, i16x8.narrow_i32x4_u(lo, hi));
  }
  for (let i = <usize>(n & ~7); i < <usize>n; i++) store<u16>(dst + (i << 1), <u16>f32ToF16(load<f32>(src + (i << 2))));
}

export function dequantizeRow_f16(src: usize, dst: usize, n: i32): void {
  const blocks = <usize>(n >> 3);
  for (let b: usize = 0; b < blocks; b++) {
    const halves = v128.load(src + b * 16);
    v128.store(dst + b * 32, f16x8LowToF32x4(halves));
    v128.store(dst + b * 32, f16x8HighToF32x4(halves), 16);
  }
  for (let i = <usize>(n & ~7); i < <usize>n; i++) store<f32>(dst + (i << 2), f16ToF32(<u32>load<u16>(src + (i << 1))));
}

/** Σ row[i] × x[i] over n f16 pairs, widened to f32 (f32 products, f32x4 accumulators). */
export function dot_f16(row: usize, x: usize, n: i32): f32 {
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  const blocks = <usize>(n >> 3);
  for (let b: usize = 0; b < blocks; b++) {
    const a = v128.load(row + b * 16);
    const c = v128.load(x + b * 16);
    acc0 = f32x4.add(acc0, f32x4.mul(f16x8LowToF32x4(a), f16x8LowToF32x4(c)));
    acc1 = f32x4.add(acc1, f32x4.mul(f16x8HighToF32x4(a), f16x8HighToF32x4(c)));
  }
  let sum = hsumF32x4(f32x4.add(acc0, acc1));
  for (let i = <usize>(n & ~7); i < <usize>n; i++) {
    sum += f16ToF32(<u32>load<u16>(row + (i << 1))) * f16ToF32(<u32>load<u16>(x + (i << 1)));
  }
  return sum;
}

/** out[i] += w × row[i] for n f16 values. */
export function axpy_f16(out: usize, w: f32, row: usize, n: i32): void {
  const weight = f32x4.splat(w);
  const blocks = <usize>(n >> 3);
  for (let b: usize = 0; b < blocks; b++) {
    const halves = v128.load(row + b * 16);
    const o = out + b * 32;
    v128.store(o, f32x4.add(v128.load(o), f32x4.mul(weight, f16x8LowToF32x4(halves))));
    v128.store(o, f32x4.add(v128.load(o, 16), f32x4.mul(weight, f16x8HighToF32x4(halves))), 16);
  }
  for (let i = <usize>(n & ~7); i < <usize>n; i++) {
    const o = out + (i << 2);
    store<f32>(o, load<f32>(o) + w * f16ToF32(<u32>load<u16>(row + (i << 1))));
  }
}

/**
 * out[t][r] = dot(W[r], X[t]) for r in [rowStart, rowEnd), t in [0, nTokens): W is (rows, cols) f16, X is
 * (nTokens, xStride bytes) f16, out is (nTokens, outStride bytes) f32. Summation order: floatdot.ts.
 */
export function matmul_f16(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  matmulFloats(F16, w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride);
}

/** out[r] = dot(W[r], x) for r in [rowStart, rowEnd): matmul_f16 with one token, bit for bit. */
export function matvec_f16(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  matmulFloats(F16, w, x, out, rowStart, rowEnd, cols, 1, 0, 0);
}
