// q8_1 kernels: 32-value blocks of 36 bytes (fp16 d, fp16 s, 32 × int8): the activation partner of q4_1 / q5_1 dots.
// Only quantize and dequantize: q8_1 is never stored, so it has no dot, axpy or matvec.
import { i8x16QuarterToF32x4, loadF16, quantizeQ8Block } from "./common";

const BYTES: usize = 36;

export function quantizeRow_q8_1(src: usize, dst: usize, n: i32): void {
  const nb = <usize>(n >> 5);
  for (let b: usize = 0; b < nb; b++) {
    const block = dst + b * BYTES;
    quantizeQ8Block(src + b * 128, block, block + 4, block + 2);
  }
}

export function dequantizeRow_q8_1(src: usize, dst: usize, n: i32): void {
  const nb = <usize>(n >> 5);
  for (let b: usize = 0; b < nb; b++) {
    const block = src + b * BYTES;
    const d = f32x4.splat(loadF16(block));
    const o = dst + b * 128;
    for (let half: usize = 0; half < 2; half++) {
      const q = v128.load(block + 4 + half * 16);
      const p = o + half * 64;
      v128.store(p, f32x4.mul(i8x16QuarterToF32x4(q, 0), d));
      v128.store(p, f32x4.mul(i8x16QuarterToF32x4(q, 1), d), 16);
      v128.store(p, f32x4.mul(i8x16QuarterToF32x4(q, 2), d), 32);
      v128.store(p, f32x4.mul(i8x16QuarterToF32x4(q, 3), d), 48);
    }
  }
}
