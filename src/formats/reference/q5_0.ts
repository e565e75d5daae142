/**
 * q5_0: 32 values per 22-byte block, symmetric 5-bit.
 * Block layout (ggml-common.h block_q5_0): fp16 d | u32 qh (5th bit of value j at bit j, little-endian) | 16 B nibbles
 * (byte j: value j in the low nibble, value j+16 in the high nibble). value = (q − 16) × d, q in 0..31.
 * Dot partner: q8_0 (fp16 d, 32 × int8).
 */
import type { BlockFormat } from "../types.js";
import { kernelNames } from "../types.js";
import { checkBytes, checkWholeBlocks, readF16, writeF16 } from "./scalar.js";

const fround = Math.fround;
export const Q5_0_BLOCK = 32;
export const Q5_0_BYTES = 22;
const Q8_0_BYTES = 34;

/** C's `(int8_t)(float)` on x86-64: truncate toward zero into int32 (NaN and overflow give INT_MIN), keep the low byte. */
export function truncToInt8(v: number): number {
  const t = Number.isFinite(v) && Math.abs(v) < 2147483648 ? Math.trunc(v) : -2147483648;
  return (t << 24) >> 24;
}

/** Quantize exactly as ggml's quantize_row_q5_0_ref: d = (value of largest magnitude) / −16, q = min(31, (int8)(x/d + 16.5)). */
export function quantizeRowQ5_0(src: Float32Array, dst: Uint8Array): void {
  const nBlocks = checkRow(src.length, dst.length);
  for (let b = 0; b < nBlocks; b++) {
    const x = src.subarray(b * Q5_0_BLOCK, (b + 1) * Q5_0_BLOCK); // (32)
    let amax = 0;
    let max = 0;
    for (let j = 0; j < Q5_0_BLOCK; j++) {
      if (amax < Math.abs(x[j])) {
        amax = Math.abs(x[j]);
        max = x[j];
      }
    }
    const d = fround(max / -16);
    const id = d ? fround(1 / d) : 0;
    const base = b * Q5_0_BYTES;
    writeF16(dst, base, d);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(31, truncToInt8(fround(fround(x[j] * id) + 16.5))) & 0xff;
      const q1 = Math.min(31, truncToInt8(fround(fround(x[j + 16] * id) + 16.5))) & 0xff;
      dst[base + 6 + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
      qh |= ((q0 >> 4) & 1) << j;
      qh |= ((q1 >> 4) & 1) << (j + 16);
    }
    for (let k = 0; k < 4; k++) dst[base + 2 + k] = (qh >>> (8 * k)) & 0xff;
  }
}

/** The 32 signed quants (−16..15) of block `b`. */
export function blockQuantsQ5_0(row: Uint8Array, b: number): Int8Array {
  const base = b * Q5_0_BYTES;
  const qh = (row[base + 2] | (row[base + 3] << 8) | (row[base + 4] << 16) | (row[base + 5] << 24)) >>> 0;
  const q = new Int8Array(Q5_0_BLOCK); // (32)
  for (let j = 0; j < 16; j++) {
    const byte = row[base + 6 + j];
    q[j] = ((byte & 0x0f) | (((qh >>> j) & 1) << 4)) - 16;
    q[j + 16] = ((byte >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16;
  }
  return q;
}

export function dequantizeRowQ5_0(src: Uint8Array, dst: Float32Array): void {
  const nBlocks = checkRow(dst.length, src.length);
  for (let b = 0; b < nBlocks; b++) {
    const d = readF16(src, b * Q5_0_BYTES);
    const q = blockQuantsQ5_0(src, b);
    for (let j = 0; j < Q5_0_BLOCK; j++) dst[b * Q5_0_BLOCK + j] = fround(q[j] * d);
  }
}

/** ggml_vec_dot_q5_0_q8_0: per block, the integer sum of products scaled by fp32(d_x)·fp32(d_y); blocks summed in float64. */
export function dotQ5_0Q8_0(row: Uint8Array, x: Uint8Array, n: number): number {
  const nBlocks = checkWholeBlocks("q5_0", n, Q5_0_BLOCK);
  checkBytes("q5_0", "row", row.length, nBlocks * Q5_0_BYTES);
  checkBytes("q5_0", "q8_0 operand", x.length, nBlocks * Q8_0_BYTES);
  let sum = 0;
  for (let b = 0; b < nBlocks; b++) {
    const q = blockQuantsQ5_0(row, b);
    const xBase = b * Q8_0_BYTES;
    let sumi = 0;
    for (let j = 0; j < Q5_0_BLOCK; j++) sumi += q[j] * ((x[xBase + 2 + j] << 24) >> 24);
    const scale = fround(readF16(row, b * Q5_0_BYTES) * readF16(x, xBase));
    sum += fround(scale * sumi);
  }
  return sum;
}

function checkRow(nValues: number, nBytes: number): number {
  const nBlocks = checkWholeBlocks("q5_0", nValues, Q5_0_BLOCK);
  checkBytes("q5_0", "row", nBytes, nBlocks * Q5_0_BYTES);
  return nBlocks;
}

export const q5_0: BlockFormat = {
  name: "q5_0",
  ggmlType: 6,
  blockSize: Q5_0_BLOCK,
  bytesPerBlock: Q5_0_BYTES,
  dotPartner: "q8_0",
  kv: true,
  weight: true,
  reference: { quantizeRow: quantizeRowQ5_0, dequantizeRow: dequantizeRowQ5_0, dot: dotQ5_0Q8_0 },
  kernels: kernelNames("q5_0"),
};
