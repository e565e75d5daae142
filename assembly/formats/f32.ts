// f32 kernels: rows of little-endian floats; the dot partner is f32.
import { hsumF32x4 } from "./common";
import { F32, matmulFloats } from "./floatdot";

export function quantizeRow_f32(src: usize, dst: usize, n: i32): void {
  memory.copy(dst, src, <usize>n << 2);
}

export function dequantizeRow_f32(src: usize, dst: usize, n: i32): void {
  memory.copy(dst, src, <usize>n << 2);
}

/** Σ row[i] × x[i] over n floats: two f32x4 accumulators, scalar tail. */
export function dot_f32(row: usize, x: usize, n: i32): f32 {
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  const end8 = <usize>(n & ~7) << 2;
  let off: usize = 0;
  for (; off < end8; off += 32) {
    acc0 = f32x4.add(acc0, f32x4.mul(v128.load(row + off), v128.load(x + off)));
    acc1 = f32x4.add(acc1, f32x4.mul(v128.load(row + off, 16), v128.load(x + off, 16)));
  }
  let sum = hsumF32x4(f32x4.add(acc0, acc1));
  const end = <usize>n << 2;
  for (; off < end; off += 4) sum += load<f32>(row + off) * load<f32>(x + off);
  return sum;
}

/** out[i] += w × row[i] for n floats. */
export function axpy_f32(out: usize, w: f32, row: usize, n: i32): void {
  const weight = f32x4.splat(w);
  const end4 = <usize>(n & ~3) << 2;
  let off: usize = 0;
  for (; off < end4; off += 16) v128.store(out + off, f32x4.add(v128.load(out + off), f32x4.mul(weight, v128.load(row + off))));
  const end = <usize>n << 2;
  for (; off < end; off += 4) store<f32>(out + off, load<f32>(out + off) + w * load<f32>(row + off));
}

/**
 * out[t][r] = dot(W[r], X[t]) for r in [rowStart, rowEnd), t in [0, nTokens): W is (rows, cols) f32, X is
 * (nTokens, xStride bytes) f32, out is (nTokens, outStride bytes) f32. Summation order: floatdot.ts.
 */
export function matmul_f32(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  matmulFloats(F32, w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride);
}

/** out[r] = dot(W[r], x) for r in [rowStart, rowEnd): matmul_f32 with one token, bit for bit. */
export function matvec_f32(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  matmulFloats(F32, w, x, out, rowStart, rowEnd, cols, 1, 0, 0);
}
