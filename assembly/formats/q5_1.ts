// q5_1 kernels. Block (24 B): fp16 d | fp16 m | u32 qh (bit j = 5th bit of value j) | 16 B nibbles (byte j: value j
// low, value j+16 high). value = q × d + m, q in 0..31. Dot partner: q8_1 blocks (36 B: fp16 d | fp16 s = d × Σ quants
// | 32 × int8).
// Byte offsets everywhere; n counts values and is a whole number of 32-value blocks.

import { U8_15, axpyQuants16Min, dequantQuants16Min, dotI8x16, f16x4ToF32x4, f32ToF16, fifthBits, highNibbles, hsumF32x4, loadF16, u8const } from "./common";
import { Q5_1 } from "./rowdot";
import { matmulRows } from "./matmul-rows";

const Q5_1_BLOCK: i32 = 32;
const Q5_1_BYTES: usize = 24;
const Q8_1_BYTES: usize = 36;

// ---- block decoding ----

/** Quants (0..31) of values 0..15 of the block at `block`. */
// @ts-ignore: decorator
@inline function quantsLow(block: usize): v128 {
  return v128.or(v128.and(v128.load(block, 8), u8const(U8_15)), fifthBits(load<u32>(block, 4), 0));
}

/** Quants (0..31) of values 16..31 of the block at `block`. */
// @ts-ignore: decorator
@inline function quantsHigh(block: usize): v128 {
  return v128.or(highNibbles(v128.load(block, 8)), fifthBits(load<u32>(block, 4), 2));
}

/** C's `(int8_t)(float)`: truncate toward zero (NaN gives 0), keep the low byte as a signed value. */
// @ts-ignore: decorator
@inline function truncToI8(v: f32): i32 {
  return (<i32>v << 24) >> 24;
}

// ---- kernels ----

/** Quantize n floats at src into q5_1 blocks at dst, byte for byte as ggml's quantize_row_q5_1_ref. */
export function quantizeRow_q5_1(src: usize, dst: usize, n: i32): void {
  const nBlocks = n / Q5_1_BLOCK;
  for (let b = 0; b < nBlocks; b++) {
    const x = src + (<usize>b << 7); // f32 (32)
    const out = dst + <usize>b * Q5_1_BYTES;
    let lowest: f32 = f32.MAX_VALUE;
    let highest: f32 = -f32.MAX_VALUE;
    for (let j = 0; j < Q5_1_BLOCK; j++) {
      const v = load<f32>(x + (<usize>j << 2));
      if (v < lowest) lowest = v;
      if (v > highest) highest = v;
    }
    const d: f32 = (highest - lowest) / <f32>31.0;
    const id: f32 = d != 0 ? <f32>1.0 / d : 0;
    store<u16>(out, <u16>f32ToF16(d));
    store<u16>(out, <u16>f32ToF16(lowest), 2);
    let qh: u32 = 0;
    for (let j = 0; j < 16; j++) {
      // (uint8_t)(float) truncates through int32 and keeps the low byte
      const q0 = <u32>truncToI8((load<f32>(x + (<usize>j << 2)) - lowest) * id + <f32>0.5) & 0xff;
      const q1 = <u32>truncToI8((load<f32>(x + (<usize>(j + 16) << 2)) - lowest) * id + <f32>0.5) & 0xff;
      store<u8>(out + 8 + <usize>j, <u8>((q0 & 0x0f) | ((q1 & 0x0f) << 4)));
      qh |= ((q0 >> 4) & 1) << j;
      qh |= ((q1 >> 4) & 1) << (j + 16);
    }
    store<u32>(out, qh, 4);
  }
}

/** Decode n values of q5_1 blocks at src into f32 at dst. */
export function dequantizeRow_q5_1(src: usize, dst: usize, n: i32): void {
  const nBlocks = n / Q5_1_BLOCK;
  for (let b = 0; b < nBlocks; b++) {
    const block = src + <usize>b * Q5_1_BYTES;
    const out = dst + (<usize>b << 7);
    const d = f32x4.splat(loadF16(block));
    const m = f32x4.splat(loadF16(block + 2));
    dequantQuants16Min(out, quantsLow(block), d, m);
    dequantQuants16Min(out + 64, quantsHigh(block), d, m);
  }
}

// @ts-ignore: decorator
@inline function dotRow(row: usize, x: usize, nBlocks: i32): f32 {
  let acc = f32x4.splat(0);
  let minAcc = f32x4.splat(0); // lane 1 sums m_x·s_y
  for (let b = 0; b < nBlocks; b++) {
    const block = row + <usize>b * Q5_1_BYTES;
    const y = x + <usize>b * Q8_1_BYTES;
    const sumi = i32x4.add(dotI8x16(quantsLow(block), v128.load(y, 4)), dotI8x16(quantsHigh(block), v128.load(y, 20)));
    // the four fp16 scalars [d_x, m_x, d_y, s_y] decoded at once; products [d_x·d_y, m_x·s_y, ...]
    const halves = i32x4.extend_low_i16x8_u(v128.load32_lane(y, v128.load32_zero(block), 1));
    const scalars = f16x4ToF32x4(halves);
    const products = f32x4.mul(scalars, i32x4.shuffle(scalars, scalars, 2, 3, 0, 1));
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sumi), i32x4.shuffle(products, products, 0, 0, 0, 0)));
    minAcc = f32x4.add(minAcc, products);
  }
  return hsumF32x4(acc) + f32x4.extract_lane(minAcc, 1);
}

/** Dot of a q5_1 row (n values) with x already quantized to q8_1 (ggml_vec_dot_q5_1_q8_1). */
export function dot_q5_1(row: usize, x: usize, n: i32): f32 {
  return dotRow(row, x, n / Q5_1_BLOCK);
}

/** out[i] += w × value[i] for the n values of a q5_1 row (V accumulation). */
export function axpy_q5_1(out: usize, w: f32, row: usize, n: i32): void {
  const nBlocks = n / Q5_1_BLOCK;
  const w4 = f32x4.splat(w);
  for (let b = 0; b < nBlocks; b++) {
    const block = row + <usize>b * Q5_1_BYTES;
    const o = out + (<usize>b << 7);
    const d = f32x4.splat(loadF16(block));
    const m = f32x4.splat(loadF16(block + 2));
    axpyQuants16Min(o, quantsLow(block), d, m, w4);
    axpyQuants16Min(o + 64, quantsHigh(block), d, m, w4);
  }
}

/**
 * out[t][r] = dot(W[r], X[t]) for r in [rowStart, rowEnd), t in [0, nTokens): W is (rows, cols) q5_1, X is
 * (nTokens, xStride bytes) q8_1, out is (nTokens, outStride bytes) f32. Summation order: rowdot.ts.
 */
export function matmul_q5_1(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  matmulRows(Q5_1, w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride);
}

/** out[r] = dot(W[r], x) for r in [rowStart, rowEnd): matmul_q5_1 with one token, bit for bit. */
export function matvec_q5_1(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  matmulRows(Q5_1, w, x, out, rowStart, rowEnd, cols, 1, 0, 0);
}
