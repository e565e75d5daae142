// q8_K kernels: 256-value blocks of 292 bytes (f32 d, 256 × int8, 16 × int16 group sums): the activation partner of
// every K-quant dot. Only quantize and dequantize: q8_K is never stored, so it has no dot, axpy or matvec.
import { Q8_K_BYTES, quantizeQ8KBlock } from "./kquants";
import { i8x16QuarterToF32x4 } from "./common";

export function quantizeRow_q8_K(src: usize, dst: usize, n: i32): void {
  const nb = <usize>(n >> 8);
  for (let b: usize = 0; b < nb; b++) quantizeQ8KBlock(src + (b << 10), dst + b * Q8_K_BYTES);
}

/** Rows [rowStart, rowEnd) of f32 (nRows, cols) at src as q8_K rows at dst ((nRows, cols / 256 × 292) bytes): one row range per thread. */
export function quantizeRows_q8_K(src: usize, dst: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  const rowBytes = <usize>(cols >> 8) * Q8_K_BYTES;
  for (let r = rowStart; r < rowEnd; r++) quantizeRow_q8_K(src + <usize>r * <usize>cols * 4, dst + <usize>r * rowBytes, cols);
}

export function dequantizeRow_q8_K(src: usize, dst: usize, n: i32): void {
  const nb = <usize>(n >> 8);
  for (let b: usize = 0; b < nb; b++) {
    const block = src + b * Q8_K_BYTES;
    const d = f32x4.splat(load<f32>(block));
    for (let k: usize = 0; k < 16; k++) {
      const q = v128.load(block + 4 + (k << 4));
      const o = dst + (b << 10) + (k << 6);
      v128.store(o, f32x4.mul(d, i8x16QuarterToF32x4(q, 0)));
      v128.store(o, f32x4.mul(d, i8x16QuarterToF32x4(q, 1)), 16);
      v128.store(o, f32x4.mul(d, i8x16QuarterToF32x4(q, 2)), 32);
      v128.store(o, f32x4.mul(d, i8x16QuarterToF32x4(q, 3)), 48);
    }
  }
}
