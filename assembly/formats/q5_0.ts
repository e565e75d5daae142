// q5_0 kernels. Block (22 B): fp16 d | u32 qh (bit j = 5th bit of value j) | 16 B nibbles (byte j: value j low,
// value j+16 high). value = (q − 16) × d, q in 0..31. Dot partner: q8_0 blocks (34 B: fp16 d | 32 × int8).
// Byte offsets everywhere; n counts values and is a whole number of 32-value blocks.

import { U8_15, U8_16, axpyQuants16, dequantQuants16, dotI8x16, f32ToF16, fifthBits, highNibbles, hsumF32x4, loadF16, u8const } from "./common";
import { Q5_0 } from "./rowdot";
import { matmulRows } from "./matmul-rows";

const Q5_0_BLOCK: i32 = 32;
const Q5_0_BYTES: usize = 22;
const Q8_0_BYTES: usize = 34;

// ---- block decoding ----

/** Signed quants (−16..15) of values 0..15 of the block at `block`. */
// @ts-ignore: decorator
@inline function quantsLow(block: usize): v128 {
  const nibbles = v128.and(v128.load(block, 6), u8const(U8_15));
  return i8x16.sub(v128.or(nibbles, fifthBits(load<u32>(block, 2), 0)), u8const(U8_16));
}

/** Signed quants (−16..15) of values 16..31 of the block at `block`. */
// @ts-ignore: decorator
@inline function quantsHigh(block: usize): v128 {
  const nibbles = highNibbles(v128.load(block, 6));
  return i8x16.sub(v128.or(nibbles, fifthBits(load<u32>(block, 2), 2)), u8const(U8_16));
}

/** C's `(int8_t)(float)`: truncate toward zero (NaN gives 0), keep the low byte as a signed value. */
// @ts-ignore: decorator
@inline function truncToI8(v: f32): i32 {
  return (<i32>v << 24) >> 24;
}

// ---- kernels ----

/** Quantize n floats at src into q5_0 blocks at dst, byte for byte as ggml's quantize_row_q5_0_ref. */
export function quantizeRow_q5_0(src: usize, dst: usize, n: i32): void {
  const nBlocks = n / Q5_0_BLOCK;
  for (let b = 0; b < nBlocks; b++) {
    const x = src + (<usize>b << 7); // f32 (32)
    const out = dst + <usize>b * Q5_0_BYTES;
    let amax: f32 = 0;
    let max: f32 = 0;
    for (let j = 0; j < Q5_0_BLOCK; j++) {
      const v = load<f32>(x + (<usize>j << 2));
      if (amax < abs<f32>(v)) {
        amax = abs<f32>(v);
        max = v;
      }
    }
    const d: f32 = max / <f32>-16.0;
    const id: f32 = d != 0 ? <f32>1.0 / d : 0;
    store<u16>(out, <u16>f32ToF16(d));
    let qh: u32 = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = <u32>min<i32>(31, truncToI8(load<f32>(x + (<usize>j << 2)) * id + <f32>16.5)) & 0xff;
      const q1 = <u32>min<i32>(31, truncToI8(load<f32>(x + (<usize>(j + 16) << 2)) * id + <f32>16.5)) & 0xff;
      store<u8>(out + 6 + <usize>j, <u8>((q0 & 0x0f) | ((q1 & 0x0f) << 4)));
      qh |= ((q0 >> 4) & 1) << j;
      qh |= ((q1 >> 4) & 1) << (j + 16);
    }
    store<u32>(out, qh, 2);
  }
}

/** Decode n values of q5_0 blocks at src into f32 at dst. */
export function dequantizeRow_q5_0(src: usize, dst: usize, n: i32): void {
  const nBlocks = n / Q5_0_BLOCK;
  for (let b = 0; b < nBlocks; b++) {
    const block = src + <usize>b * Q5_0_BYTES;
    const out = dst + (<usize>b << 7);
    const d = f32x4.splat(loadF16(block));
    dequantQuants16(out, quantsLow(block), d);
    dequantQuants16(out + 64, quantsHigh(block), d);
  }
}

// @ts-ignore: decorator
@inline function dotRow(row: usize, x: usize, nBlocks: i32): f32 {
  let acc = f32x4.splat(0);
  for (let b = 0; b < nBlocks; b++) {
    const block = row + <usize>b * Q5_0_BYTES;
    const y = x + <usize>b * Q8_0_BYTES;
    const sumi = i32x4.add(dotI8x16(quantsLow(block), v128.load(y, 2)), dotI8x16(quantsHigh(block), v128.load(y, 18)));
    const scale = loadF16(block) * loadF16(y);
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sumi), f32x4.splat(scale)));
  }
  return hsumF32x4(acc);
}

/** Dot of a q5_0 row (n values) with x already quantized to q8_0 (ggml_vec_dot_q5_0_q8_0). */
export function dot_q5_0(row: usize, x: usize, n: i32): f32 {
  return dotRow(row, x, n / Q5_0_BLOCK);
}

/** out[i] += w × value[i] for the n values of a q5_0 row (V accumulation). */
export function axpy_q5_0(out: usize, w: f32, row: usize, n: i32): void {
  const nBlocks = n / Q5_0_BLOCK;
  const w4 = f32x4.splat(w);
  for (let b = 0; b < nBlocks; b++) {
    const block = row + <usize>b * Q5_0_BYTES;
    const o = out + (<usize>b << 7);
    const d = f32x4.splat(loadF16(block));
    axpyQuants16(o, quantsLow(block), d, w4);
    axpyQuants16(o + 64, quantsHigh(block), d, w4);
  }
}

/**
 * out[t][r] = dot(W[r], X[t]) for r in [rowStart, rowEnd), t in [0, nTokens): W is (rows, cols) q5_0, X is
 * (nTokens, xStride bytes) q8_0, out is (nTokens, outStride bytes) f32. Summation order: rowdot.ts.
 */
export function matmul_q5_0(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  matmulRows(Q5_0, w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride);
}

/** out[r] = dot(W[r], x) for r in [rowStart, rowEnd): matmul_q5_0 with one token, bit for bit. */
export function matvec_q5_0(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  matmulRows(Q5_0, w, x, out, rowStart, rowEnd, cols, 1, 0, 0);
}
